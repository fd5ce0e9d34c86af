"""Whitening and colouring, and the Fréchet distance, as people run them: time and error of each
method, as a ratio against ``eigh`` measured in the same run.

- WCT rows: :func:`sqrtlayers.whitening_coloring` on VGG-19 feature maps of an image of
  ``wct_image_size`` (``relu1_1`` .. ``relu5_1``: 64 to 512 channels at strides 1 to 16), one
  matrix per sample (one group), content and style of ``wct_batch`` samples each; beside the
  backends, SciPy's ``sqrtm`` per sample (float64, CPU, forward only).
- Fréchet rows: :func:`sqrtlayers.frechet_distance` of two ``n x n`` covariances (2048: the
  Inception pool features of FID); beside it SciPy's ``sqrtm`` of ``S_a S_b`` in float64 (how
  FID is usually computed) and ``torch.linalg.eigvals`` of ``S_a S_b`` (the square roots of its
  eigenvalues, summed), both forward only.

Errors are relative to a float64 ``eigh`` computation of the same quantity: the Frobenius error
of the WCT output, the absolute error of the distance over the distance. A method that fails is
a "failed: ..." row, not an error. Run with ``python -m benchmarks gaussian [--preset quick|gpu]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import sqrtlayers as sl

from .constants import FORWARD, OK, PHASES, REFERENCE, SKIPPED
from .environment import configure_tf32, describe_environment, resolve_device
from .records import Results, _json_safe, describe_failure
from .report import _header, _ms, _ratio, markdown_table
from .settings import GaussianSettings
from .timing import Deadline, Progress, time_step

__all__ = ["GaussianRecord", "GaussianResults", "VGG19_LEVELS", "run_gaussian", "gaussian_markdown"]

#: VGG-19 levels: (channels, stride).
VGG19_LEVELS = {"relu1_1": (64, 1), "relu2_1": (128, 2), "relu3_1": (256, 4), "relu4_1": (512, 8), "relu5_1": (512, 16)}
SCIPY = "scipy.linalg.sqrtm"
EIGVALS = "torch.linalg.eigvals"
DEFAULT_BACKENDS = ["eigh", "accurate", "mpa-lya", "ns"]
# An input pair and a method that maps it to the output (a float64 CPU tensor for SciPy).
Inputs = tuple[Tensor, ...]
Method = Callable[..., Tensor]


@dataclass
class GaussianRecord:
    """One method on one task and shape, both phases."""

    task: str  # "wct" or "frechet"
    shape: str  # for the table
    method: str
    forward_ms: float | None = None
    forward_backward_ms: float | None = None
    forward_ratio: float | None = None
    forward_backward_ratio: float | None = None
    error: float | None = None
    status: str = OK


@dataclass
class GaussianResults:
    """A run's records, what it ran on (``meta``) and what to know (``notes``)."""

    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    records: list[GaussianRecord] = field(default_factory=list)

    def write_json(self, path: Path) -> Path:
        """All numbers as strict JSON (non-finite floats become ``null``)."""
        data = {"meta": self.meta, "notes": self.notes, "records": [asdict(r) for r in self.records]}
        path.write_text(json.dumps(_json_safe(data), indent=1, allow_nan=False, ensure_ascii=False) + "\n")
        return path


def _spectrum_matrix(n: int, kappa: float, gen: torch.Generator, batch: tuple[int, ...] = ()) -> Tensor:
    """``Q diag(sqrt(logspace(0, -log10 kappa)))``, float64: a factor whose Gram matrix has condition ``kappa``."""
    Q, _ = torch.linalg.qr(torch.randn(*batch, n, n, generator=gen, dtype=torch.float64))
    return Q * torch.logspace(0.0, -math.log10(kappa), n, dtype=torch.float64).sqrt()


def wct_inputs(s: GaussianSettings, level: str, seed: int) -> tuple[Tensor, Tensor]:
    """Content and style features ``(B, C, H, W)`` of a VGG-19 level, float64 on the CPU, whose
    channel covariance has condition about ``wct_kappa`` (fewer positions than channels at the
    deep levels of small images: then singular, and ridged by ``eps``)."""
    channels, stride = VGG19_LEVELS[level]
    side = max(1, s.wct_image_size // stride)
    gen = torch.Generator().manual_seed(seed)
    pair = []
    for _ in range(2):
        mix = _spectrum_matrix(channels, s.wct_kappa, gen)
        z = torch.randn(s.wct_batch, channels, side * side, generator=gen, dtype=torch.float64)
        mean = torch.randn(channels, 1, generator=gen, dtype=torch.float64)
        pair.append((mix @ z + mean).view(-1, channels, side, side))
    return pair[0], pair[1]


def frechet_inputs(n: int, kappa: float, seed: int) -> Inputs:
    """``(mean_a, cov_a, mean_b, cov_b)`` float64 on the CPU, each covariance of condition
    ``kappa``; the means are equal, so that the distance is all covariance term, whose error is
    the one measured (a mean difference would add an exactly computed amount to it)."""
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(n, generator=gen, dtype=torch.float64)
    out = []
    for _ in range(2):
        factor = _spectrum_matrix(n, kappa, gen)
        cov = factor @ factor.mT
        out += [mean, (cov + cov.mT) / 2]
    return tuple(out)


def _scipy_wct(content: Tensor, style: Tensor, eps: float) -> Tensor:
    """Whitening and colouring per sample by SciPy's ``sqrtm`` (float64, CPU)."""
    import numpy as np
    from scipy import linalg

    out = []
    for x, y in zip(content.flatten(2).double().cpu().numpy(), style.flatten(2).double().cpu().numpy()):
        roots = []
        for features in (x, y):
            mean = features.mean(1, keepdims=True)
            cov = np.cov(features, bias=True)
            cov += eps * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
            roots.append((mean, linalg.sqrtm(cov).real))
        (mean_c, root_c), (mean_s, root_s) = roots
        out.append(root_s @ np.linalg.solve(root_c, x - mean_c) + mean_s)
    return torch.from_numpy(np.stack(out)).view(content.shape)


def _scipy_frechet(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> Tensor:
    import numpy as np
    from scipy import linalg

    A, B = cov_a.double().cpu().numpy(), cov_b.double().cpu().numpy()
    difference = (mean_a - mean_b).double().cpu().numpy()
    root = linalg.sqrtm(A @ B).real
    return torch.tensor(difference @ difference + np.trace(A) + np.trace(B) - 2 * np.trace(root))


def _eigvals_frechet(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> Tensor:
    """``tr (S_a S_b)^{1/2}`` as the sum of the square roots of the (complex) eigenvalues of the
    non-symmetric product, the shortcut some FID implementations take."""
    roots = torch.linalg.eigvals(cov_a @ cov_b).sqrt().real.sum(-1)
    trace = lambda M: M.diagonal(dim1=-2, dim2=-1).sum(-1)  # noqa: E731
    return (mean_a - mean_b).square().sum(-1) + trace(cov_a) + trace(cov_b) - 2 * roots


def _methods(s: GaussianSettings, task: str) -> list[tuple[str, Method, bool]]:
    """(name, function of the inputs, differentiable) for the task, eigh first."""
    names = list(dict.fromkeys([REFERENCE] + (s.backends if s.backends is not None else DEFAULT_BACKENDS)))
    methods: list[tuple[str, Method, bool]] = []
    for name in names:
        if task == "wct":
            fn: Method = lambda c, y, name=name: sl.whitening_coloring(c, y, eps=s.eps, backend=name)  # noqa: E731
        else:
            fn = lambda *g, name=name: sl.frechet_distance(*g, backend=name)  # noqa: E731
        methods.append((name, fn, True))
    if SCIPY in s.baselines:
        methods.append((SCIPY, (lambda c, y: _scipy_wct(c, y, s.eps)) if task == "wct" else _scipy_frechet, False))
    if EIGVALS in s.baselines and task == "frechet":
        methods.append((EIGVALS, _eigvals_frechet, False))
    return methods


def _step(fn: Method, inputs: Inputs, phase: str) -> Callable[[], Tensor]:
    if phase == FORWARD:
        return lambda: fn(*inputs)
    leaves = [t.detach().requires_grad_() for t in inputs]
    upstream = None

    def step() -> Tensor:
        nonlocal upstream
        for leaf in leaves:
            leaf.grad = None
        out = fn(*leaves)
        if upstream is None:
            gen = torch.Generator().manual_seed(1)
            upstream = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
        out.backward(upstream)
        return out

    return step


def run_gaussian(s: GaussianSettings) -> GaussianResults:
    """Time and measure every (task, shape, method); ratios against eigh in the same run."""
    device = resolve_device(s.device)
    configure_tf32(s.tf32)
    results = GaussianResults(
        meta=describe_environment(device, torch.float32, s.tf32) | {"config": dict(vars(s))},
        notes=[f"WCT: whitening_coloring(content, style, eps={s.eps:g}) on VGG-19 feature maps of a "
               f"{s.wct_image_size}×{s.wct_image_size} image, {s.wct_batch} samples each, one group (one "
               f"C×C matrix per sample), channel covariance of condition {s.wct_kappa:g} before the ridge; error: "
               f"relative Frobenius error of the output against float64 eigh.",
               f"Fréchet: frechet_distance of two n×n covariances of condition {s.frechet_kappa:g}, equal means; "
               f"error: |d - d64| / d64 against float64 eigh. {SCIPY}: sqrtm(S_a S_b) in float64 on the CPU "
               f"(forward only); {EIGVALS}: eigenvalues of S_a S_b in float32 (forward only).",
               f"Median of up to {s.repeats} calls after up to {s.warmup} warm-up calls, each capped at "
               f"{s.max_seconds:g} s; float32 inputs except SciPy's."],
    )  # fmt: skip
    jobs: list[tuple[str, str, Inputs, Tensor]] = []
    for level in s.wct_levels:
        content, style = wct_inputs(s, level, s.seed)
        reference = sl.whitening_coloring(content, style, eps=s.eps, backend="eigh")
        jobs.append(("wct", f"{level}: {'×'.join(map(str, content.shape))}", (content, style), reference))
    for n in s.frechet_sizes:
        inputs = frechet_inputs(n, s.frechet_kappa, s.seed)
        jobs.append(("frechet", f"{n}×{n}", inputs, sl.frechet_distance(*inputs, backend="eigh")))
    total = sum(len(_methods(s, task)) for task, *_ in jobs)
    deadline, bar = Deadline(s.time_budget), Progress(total, s.progress)
    for task, shape, inputs64, reference in jobs:
        base: dict[str, float] = {}
        for name, fn, differentiable in _methods(s, task):
            r = GaussianRecord(task, shape, name)
            on_cpu = name == SCIPY
            inputs = inputs64 if on_cpu else tuple(t.to(device=device, dtype=torch.float32) for t in inputs64)
            r.status = SKIPPED if deadline.expired() else OK
            try:
                if r.status == OK:
                    out = fn(*inputs)
                    r.error = float((out.detach().double().cpu() - reference).norm() / reference.norm())
                for phase in (PHASES if differentiable else (FORWARD,)) if r.status == OK else ():
                    median, _, _ = time_step(_step(fn, inputs, phase), torch.device("cpu") if on_cpu else device,
                                             warmup=s.warmup, repeats=s.repeats, max_seconds=s.max_seconds)  # fmt: skip
                    setattr(r, "forward_ms" if phase == FORWARD else "forward_backward_ms", median)
                    if name == REFERENCE:
                        base[phase] = median
                    if base.get(phase):
                        ratio = "forward_ratio" if phase == FORWARD else "forward_backward_ratio"
                        setattr(r, ratio, median / base[phase])
            except Exception as exc:  # a method that fails is a table row
                r.status = describe_failure(exc)
            results.records.append(r)
            bar.step(f"{task} {shape} {name}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return results


def gaussian_markdown(results: GaussianResults) -> str:
    """One table per task: ms (× eigh) forward+backward and forward, and the error."""

    def cell(ms: float | None, ratio: float | None) -> str:
        return "—" if ms is None else _ms(ms) + (f" ({_ratio(ratio)})" if ratio is not None else "")

    def row(r: GaussianRecord) -> list[str]:
        if r.status != OK:
            return [r.shape, r.method, r.status, "", ""]
        return [r.shape, r.method, cell(r.forward_backward_ms, r.forward_backward_ratio),
                cell(r.forward_ms, r.forward_ratio), "—" if r.error is None else f"{r.error:.1e}"]  # fmt: skip

    title = "sqrtlayers benchmark: whitening and colouring, Fréchet distance"
    parts = _header(Results(meta=results.meta, notes=results.notes), title)
    for task, title in (("wct", "Whitening and colouring (VGG-19 levels)"), ("frechet", "Fréchet distance")):
        rows = [row(r) for r in results.records if r.task == task]
        if rows:
            headers = ["shape", "method", "forward+backward ms (× eigh)", "forward ms (× eigh)", "error vs float64"]
            parts += ["", f"## {title}", "", markdown_table(headers, rows)]
    return "\n".join(parts) + "\n"
