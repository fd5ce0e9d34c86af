"""``python -m lit_models fit|validate|test|predict [--config ...]``; see :mod:`lit_models.cli`."""

from .cli import main

main()
