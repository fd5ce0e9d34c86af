"""Names shared by every part of the benchmarks: phases, roots, execution modes, statuses."""

from __future__ import annotations

FORWARD = "forward"
FORWARD_BACKWARD = "forward+backward"
#: Timed in this order: the forward+backward is the number the reports lead with.
PHASES = (FORWARD_BACKWARD, FORWARD)

#: ``A^{1/2}`` and ``A^{-1/2}``.
OPS = ("sqrt", "inv")
OP_LABELS = {"sqrt": "A^{1/2}", "inv": "A^{-1/2}"}

EAGER = "eager"
COMPILE = "compile"
CUDAGRAPH = "cudagraph"
MODES = (EAGER, COMPILE, CUDAGRAPH)

#: ``status`` of a measurement that ran; any other status reads "failed: ...", "skipped: ...",
#: "unavailable: ..." or "n/a: ..." and comes without numbers.
OK = "ok"
SKIPPED = "skipped: time budget"
NEEDS_CUDA = "skipped: needs CUDA"
FORWARD_ONLY = "n/a: forward only"

#: Times are reported as ratios against this backend, eager, measured in the same run.
REFERENCE = "eigh"
#: Registered names left out by default: they compute exactly what another name does.
ALIASES = frozenset({"svd"})
#: Outside baselines, measured beside the registered backends when asked for by name.
MATRIX_SQRTH = "torch.matrix_sqrth"
CUPY_EIGH = "cupy.eigh"

#: Application variants: first BN -> ZCABatchNorm with one group (decorrelated BN), every BN in
#: groups, avgpool + fc -> ISqrtCovHead, and the first BN layer alone against nn.BatchNorm2d.
VARIANTS = ("zca-first", "zca-all", "head", "zca-layer")

#: Hidden first argument of ``python -m benchmarks`` that runs one isolated job in-process.
WORKER_COMMAND = "_worker"
#: A subprocess needs about this long to import torch and start: not worth launching with less.
MIN_WORKER_SECONDS = 10.0
