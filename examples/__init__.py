"""Runnable examples of the library, from the repository root (``python -m examples.NAME``); not installed."""
