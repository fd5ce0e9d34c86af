"""Benchmarks of sqrtlayers: time, accuracy and memory of every square-root backend over batch
sizes, matrix sizes and condition numbers, in eager, compiled and CUDA-graph modes; the GPU run
(``--preset gpu``); and ResNet-18 training steps with the layers. Not part of the installed
library. Run ``python -m benchmarks --help`` from the repository root, or from Python:

    >>> from benchmarks import StudySettings, run_study  # doctest: +SKIP

Benchmarks are not tests: nothing here gates on a time. See docs/BENCHMARKS.md.
"""

from .app import run_app
from .records import Results
from .settings import PRESETS, AppSettings, StudySettings
from .study import run_study

__all__ = ["StudySettings", "AppSettings", "PRESETS", "run_study", "run_app", "Results"]
