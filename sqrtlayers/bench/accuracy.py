"""Forward and gradient errors against the float64 closed form, over the input families of
PAPER.md: log-spaced spectra of growing condition number, and ZCA-like sample covariances
(few samples plus ``eps * I``).

The loss is ``L = <root(A), G>`` with a seeded random symmetric ``G``; the reference gradient is
the Daleckii-Krein closed form of :func:`sqrtlayers.reference.exact_sqrtm_grad`. The exact
values are computed once per input family, from the matrices as cast to the benchmark dtype
(the method is judged on the input it was given, not on a float64 matrix it never saw).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..reference import exact_sqrtm, exact_sqrtm_grad, make_covariance, make_spd, relative_error
from .methods import BenchMethod
from .modes import symmetric_upstream_gradient
from .records import AccuracyRecord, describe_failure
from .report import short_power

__all__ = ["AccuracyCase", "ReferenceValues", "accuracy_cases", "reference_values", "measure_accuracy"]

OPS = ("sqrt", "inv")


@dataclass(frozen=True)
class AccuracyCase:
    """One family of test matrices, and its column label."""

    label: str
    kind: str  # "spd" or "covariance"
    kappa: float | None = None
    samples: int | None = None
    eps: float | None = None

    def matrices(self, n: int, batch: int, seed: int) -> Tensor:
        """``(batch, n, n)`` float64 matrices on the CPU."""
        if self.kind == "spd":
            return make_spd(n, self.kappa, batch=(batch,), seed=seed)
        return make_covariance(n, self.samples, self.eps, batch=(batch,), seed=seed)


def accuracy_cases(kappas: list[float], cov_samples: list[int], cov_eps: list[float]) -> list[AccuracyCase]:
    """The κ sweep, then every (samples, eps) covariance combination."""
    cases = [AccuracyCase(f"κ={short_power(k)}", "spd", kappa=k) for k in kappas]
    cases += [
        AccuracyCase(f"cov s={s} ε={short_power(e)}", "covariance", samples=s, eps=e)
        for s in cov_samples
        for e in cov_eps
    ]
    return cases


@dataclass(frozen=True)
class ReferenceValues:
    """Inputs of one case at the benchmark dtype, and their float64 exact roots and gradients."""

    A: Tensor  # benchmark dtype, CPU
    G: Tensor  # float64, CPU
    condition: float  # median 2-norm condition number of A
    roots: dict[str, Tensor]  # op -> exact root
    grads: dict[str, Tensor]  # op -> exact gradient


def reference_values(case: AccuracyCase, n: int, batch: int, dtype: torch.dtype, seed: int) -> ReferenceValues:
    """Build the case's matrices and their exact values once, for every method to compare with."""
    A = case.matrices(n, batch, seed).to(dtype)
    A64 = A.double()
    G = symmetric_upstream_gradient(A.shape, torch.float64, torch.device("cpu"), seed + 1)
    evals = torch.linalg.eigvalsh(A64)
    condition = float((evals[..., -1] / evals[..., 0]).median())
    roots = {op: exact_sqrtm(A64, op == "inv") for op in OPS}
    grads = {op: exact_sqrtm_grad(A64, G, op == "inv") for op in OPS}
    return ReferenceValues(A, G, condition, roots, grads)


def _summary(errors: Tensor) -> tuple[float, float]:
    return float(errors.median()), float(errors.max())


def measure_accuracy(
    method: BenchMethod, case: AccuracyCase, ref: ReferenceValues, op: str, device: torch.device
) -> AccuracyRecord:
    """Errors of ``method`` on ``case`` for ``op`` ("sqrt" or "inv"); never raises: a failure
    is recorded in ``status``."""
    batch, n = ref.A.shape[0], ref.A.shape[-1]
    record = AccuracyRecord(
        method=method.name,
        op=op,
        case=case.label,
        kind=case.kind,
        n=n,
        batch=batch,
        kappa=case.kappa,
        samples=case.samples,
        eps=case.eps,
        condition_median=ref.condition,
    )
    try:
        leaf = ref.A.to(device).requires_grad_(method.differentiable)
        out = method.root(op)(leaf)
        record.forward_error, record.forward_error_max = _summary(
            relative_error(out.detach().cpu(), ref.roots[op])
        )
        if method.differentiable:
            (grad,) = torch.autograd.grad(out, leaf, ref.G.to(device=device, dtype=out.dtype))
            record.gradient_error, record.gradient_error_max = _summary(
                relative_error(grad.cpu(), ref.grads[op])
            )
    except Exception as exc:  # one broken method must not end the study
        record.status = describe_failure(exc)
    return record
