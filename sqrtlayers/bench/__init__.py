"""Benchmarks of the square-root backends: time, accuracy and memory over batch sizes, matrix
sizes and condition numbers, plus ResNet-18 training-step ratios for the layers.

Not imported by ``sqrtlayers`` itself. Run it as ``python -m sqrtlayers.bench`` (``--help``),
or from Python:

    >>> from sqrtlayers.bench import StudyConfig, run_study  # doctest: +SKIP

Benchmarks are not tests: nothing here gates on a time.
"""

from .app import AppConfig, run_app
from .config import StudyConfig
from .records import Results
from .study import run_study

# The CLI lives in __main__ (the console script's target) and is not imported here: importing
# it from the package would make ``python -m sqrtlayers.bench`` load it twice.
__all__ = ["StudyConfig", "run_study", "AppConfig", "run_app", "Results"]
