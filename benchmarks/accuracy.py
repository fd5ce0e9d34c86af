"""Forward and gradient errors against the float64 closed form, over two input families
(docs/BENCHMARKS.md): log-spaced spectra of growing condition number, and ZCA-like sample
covariances (few samples plus ``eps * I``); and the agreement of two methods with each other.

The loss is ``L = <root(A), G>`` with a seeded random symmetric ``G``; the reference gradient is
the closed form in the eigenbasis (:func:`sqrtlayers.reference.exact_sqrtm_grad`), computed from
the matrices as cast to the benchmark dtype: a method is judged on the input it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sqrtlayers.reference import exact_sqrtm, exact_sqrtm_grad, make_covariance, make_spd, relative_error

from .constants import FORWARD, NEEDS_CUDA, OK, OPS, SKIPPED
from .methods import BenchMethod
from .records import AccuracyRecord, AgreementRecord, describe_failure, short_power
from .timing import symmetric_upstream_gradient

__all__ = ["AccuracyCase", "accuracy_cases", "measure_accuracy", "measure_agreement", "exact_step", "not_runnable"]


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
    return cases + [AccuracyCase(f"cov s={s} ε={short_power(e)}", "covariance", samples=s, eps=e)
                    for s in cov_samples for e in cov_eps]  # fmt: skip


def not_runnable(method: BenchMethod, device: torch.device) -> str | None:
    """Why ``method`` cannot run on ``device`` (the status of its records), or ``None``."""
    if method.unavailable:
        return method.unavailable
    return NEEDS_CUDA if method.needs_cuda and device.type != "cuda" else None


def _run(method: BenchMethod, op: str, A: Tensor, G: Tensor, device: torch.device) -> tuple[Tensor, Tensor | None]:
    """Root of ``A`` and, when the method is differentiable, the gradient of ``<root, G>``; on the CPU."""
    leaf = A.to(device).requires_grad_(method.differentiable)
    out = method.root(op)(leaf)
    if not method.differentiable:
        return out.detach().cpu(), None
    (grad,) = torch.autograd.grad(out, leaf, G.to(device=device, dtype=out.dtype))
    return out.detach().cpu(), grad.cpu()


def measure_accuracy(methods: list[BenchMethod], case: AccuracyCase, n: int, batch: int, dtype: torch.dtype,
                     device: torch.device, seed: int, skip: bool = False) -> list[AccuracyRecord]:  # fmt: skip
    """Errors of every method on ``case``, both roots; a failure is a record's ``status``, and
    ``skip`` (the time budget is spent) makes every record ``SKIPPED``."""
    A = case.matrices(n, batch, seed).to(dtype)
    A64 = A.double()
    G = symmetric_upstream_gradient(A.shape, torch.float64, torch.device("cpu"), seed + 1)
    evals = torch.linalg.eigvalsh(A64)
    condition = float((evals[..., -1] / evals[..., 0]).median())
    records = []
    for op in OPS:
        exact, exact_grad = exact_sqrtm(A64, op == "inv"), exact_sqrtm_grad(A64, G, op == "inv")
        for method in methods:
            r = AccuracyRecord(method.name, op, case.label, case.kind, n, batch, case.kappa, case.samples, case.eps,
                               condition_median=condition)  # fmt: skip
            r.status = SKIPPED if skip else not_runnable(method, device) or r.status
            try:
                if r.status == OK:
                    out, grad = _run(method, op, A, G, device)
                    errors = relative_error(out, exact)
                    r.forward_error, r.forward_error_max = float(errors.median()), float(errors.max())
                    if grad is not None:
                        errors = relative_error(grad, exact_grad)
                        r.gradient_error, r.gradient_error_max = float(errors.median()), float(errors.max())
            except Exception as exc:  # one broken method must not end the study
                r.status = describe_failure(exc)
            records.append(r)
    return records


def measure_agreement(method: BenchMethod, against: BenchMethod, n: int, batch: int, kappa: float,
                      dtype: torch.dtype, device: torch.device, seed: int, skip: bool = False) -> list[AgreementRecord]:
    """Largest relative difference of ``method``'s roots and gradients from ``against``'s
    (``SKIPPED`` records when ``skip``)."""
    A = make_spd(n, kappa, batch=(batch,), dtype=dtype, seed=seed)
    G = symmetric_upstream_gradient(A.shape, torch.float64, torch.device("cpu"), seed + 1)
    records = []
    for op in OPS:
        r = AgreementRecord(method.name, against.name, op, batch, n, kappa)
        r.status = SKIPPED if skip else not_runnable(method, device) or not_runnable(against, device) or r.status
        try:
            if r.status == OK:
                (out, grad), (ref, ref_grad) = _run(method, op, A, G, device), _run(against, op, A, G, device)
                r.forward_difference = float(relative_error(out, ref).max())
                if grad is not None and ref_grad is not None:
                    r.gradient_difference = float(relative_error(grad, ref_grad).max())
        except Exception as exc:
            r.status = describe_failure(exc)
        records.append(r)
    return records


def exact_step(A: Tensor, G: Tensor, phase: str, inverse: bool) -> Tensor:
    """The float64 closed form of what a step returns: the root, or the gradient of ``<root, G>``."""
    A64 = A.detach().double().cpu()
    if phase == FORWARD:
        return exact_sqrtm(A64, inverse)
    return exact_sqrtm_grad(A64, G.detach().double().cpu(), inverse)
