"""Property-based tests (hypothesis) over every registered backend.

Each test is parametrised over ``list_backends()``, so a backend is covered the moment it is
registered, and draws its inputs: size ``n`` (1..48 under the ``ci`` profile, 1..160 under
``thorough``), leading batch shapes ``()``, ``(k,)``, ``(a, b)`` and ``(0,)``, the four float
dtypes, autocast regions, spectra (log-spaced up to ``kappa = 1e6``, clustered, exactly repeated,
rank-deficient and rank-one PSD for the square root) and an overall scale (``1e-30..1e30`` in float64,
``1e-15..1e15`` in float32 and bfloat16, ``0.1..100`` in float16, whose range is narrow).

Accuracy is held to the bound the backend declares in :mod:`sqrtlayers.backends.bounds` for the
matrix's condition number and dtype; a backend that declares none (a user's own) is still held
to every other property. The reference is the float64 root of the input as the backend received
it (after rounding to its dtype), and the float64 closed-form gradient for the same upstream
gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import Tensor

import sqrtlayers as sl
from sqrtlayers.backends.bounds import AccuracyBound, declared_bound
from sqrtlayers.reference import exact_sqrtm, exact_sqrtm_grad, relative_error

from ...conftest import THOROUGH

ROOTS = {"sqrt": sl.sqrtm, "inv_sqrt": sl.inv_sqrtm}
MAX_N = 160 if THOROUGH else 48
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
SPECTRA = ("log", "clustered", "repeated", "rank-deficient", "rank-one")
SINGULAR = ("rank-deficient", "rank-one")

# log10 of the overall scale each dtype is drawn with: float16 overflows at 65504 and loses
# relative precision below 6e-5, so its scale stays near 1.
LOG_SCALE_RANGE = {torch.float64: 30.0, torch.float32: 15.0, torch.bfloat16: 15.0, torch.float16: 1.0}
# log10 of the largest condition number each dtype is drawn with: rounding an SPD matrix to
# float16 (bfloat16) perturbs it by about 5e-4 (4e-3) of its norm, which keeps it positive
# definite only up to these condition numbers at n = 160.
LOG_KAPPA_RANGE = {torch.float64: 6.0, torch.float32: 6.0, torch.bfloat16: 1.0, torch.float16: 2.0}

# The function-scoped fixture is the suite's autouse seeding, which these tests do not rely on:
# every matrix comes from a generator seeded by the drawn case.
PROPERTY_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Case:
    """One drawn input: ``scale * Q diag(spectrum) Q^T`` with ``Q`` random orthogonal (seeded),
    built in float64 and rounded to ``dtype``."""

    n: int
    batch: tuple[int, ...] = ()
    dtype: torch.dtype = torch.float64
    spectrum: str = "log"
    log_kappa: float = 0.0
    log_scale: float = 0.0
    seed: int = 0
    autocast: bool = False

    def eigenvalues(self) -> Tensor:
        """The spectrum, largest eigenvalue 1, float64."""
        kappa = 10.0**self.log_kappa
        index = torch.arange(self.n, dtype=torch.float64)
        if self.spectrum == "log":
            return torch.logspace(0.0, -self.log_kappa, self.n, dtype=torch.float64)
        if self.spectrum == "clustered":
            # Two tight clusters (relative spread 1e-8) just inside 1 and 1/kappa.
            gen = torch.Generator().manual_seed(self.seed + 1)
            jitter = 1e-8 * torch.rand(self.n, generator=gen, dtype=torch.float64)
            return torch.where(index < (self.n + 1) // 2, 1 - jitter, (1 + jitter) / kappa)
        if self.spectrum == "repeated":
            # Exactly repeated values 1, kappa^{-1/2}, 1/kappa.
            return kappa ** (-(index % 3) / 2)
        if self.spectrum in SINGULAR:
            rank = max(1, self.n // 2) if self.spectrum == "rank-deficient" else 1
            values = torch.zeros(self.n, dtype=torch.float64)
            values[:rank] = torch.logspace(0.0, -self.log_kappa, rank, dtype=torch.float64)
            return values
        raise ValueError(f"unknown spectrum {self.spectrum!r}")

    @property
    def kappa(self) -> float:
        """Condition number of the float64 matrix (``inf`` when it is singular); at most
        ``10**log_kappa``, which is exact where rounding the spectrum would overshoot it."""
        values = self.eigenvalues()
        smallest = float(values.min())
        return math.inf if smallest == 0 else min(float(values.max()) / smallest, 10.0**self.log_kappa)

    def matrix(self) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        Q, _ = torch.linalg.qr(torch.randn(*self.batch, self.n, self.n, generator=gen, dtype=torch.float64))
        A = (Q * self.eigenvalues()) @ Q.mT * 10.0**self.log_scale
        return ((A + A.mT) / 2).to(self.dtype)

    def upstream_gradient(self) -> Tensor:
        """A seeded symmetric ``G`` for the loss ``<root, G>``, in the input's dtype."""
        gen = torch.Generator().manual_seed(self.seed + 2)
        G = torch.randn(*self.batch, self.n, self.n, generator=gen, dtype=torch.float64)
        return ((G + G.mT) / 2).to(self.dtype)


@st.composite
def cases(draw: st.DrawFn, inverse: bool, max_n: int = MAX_N) -> Case:
    dtype = draw(st.sampled_from(DTYPES))
    # Small sizes most of the time (cheap, and where off-by-one bugs live), any size up to max_n.
    n = draw(st.integers(1, 8) | st.integers(1, max_n))
    batch = draw(
        st.just(()) | st.tuples(st.integers(0, 3)) | st.tuples(st.integers(1, 2), st.integers(1, 2))
    )
    spectra = [name for name in SPECTRA if name not in SINGULAR] if inverse or n == 1 else SPECTRA
    log_scale = LOG_SCALE_RANGE[dtype]
    return Case(
        n=n,
        batch=batch,
        dtype=dtype,
        spectrum=draw(st.sampled_from(spectra)),
        log_kappa=draw(st.floats(0.0, LOG_KAPPA_RANGE[dtype])),
        log_scale=draw(st.floats(-log_scale, log_scale)),
        seed=draw(st.integers(0, 2**16)),
        autocast=draw(st.booleans()),
    )


@dataclass
class Outcome:
    A: Tensor
    G: Tensor
    out: Tensor
    grad: Tensor


def run(backend: str, case: Case, inverse: bool) -> Outcome:
    """Forward and backward of ``<root(A), G>`` (inside a bfloat16 autocast region if asked)."""
    A = case.matrix().requires_grad_()
    G = case.upstream_gradient()
    fn = sl.inv_sqrtm if inverse else sl.sqrtm
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case.autocast):
        out = fn(A, backend=backend)
    out.backward(G)
    return Outcome(A.detach(), G, out.detach(), A.grad)


@dataclass
class Errors:
    """Per-matrix relative Frobenius errors against float64, and what the forward bound implies
    for the residual."""

    forward: Tensor
    gradient: Tensor
    residual: Tensor
    asymmetry: Tensor


def measure(outcome: Outcome, inverse: bool, forward_bound: float = 0.0) -> Errors:
    """Errors of ``outcome`` against the float64 reference of its (rounded) input.

    ``residual`` is ``||Y Y - A|| / ||A||`` (or ``||Z A Z - I|| / ||I||``) divided by the most a
    root within ``forward_bound`` of the exact one can leave, so it is at most 1 when the backend
    keeps its bound: with ``Y = S + E``, ``||E||_F <= b ||S||_F``, ``Y Y - A = S E + E S + E E``
    and ``Z A Z - I = Z_* A E + E A Z_* + E A E`` (``Z_* A = A^{1/2}`` on one side).
    """
    A = outcome.A.double()
    exact = exact_sqrtm(A, inverse)
    out = outcome.out.double()
    forward = relative_error(out, exact)
    gradient = relative_error(outcome.grad.double(), exact_sqrtm_grad(A, outcome.G.double(), inverse))
    err_bound = forward_bound * torch.linalg.matrix_norm(exact)
    evals = torch.linalg.eigvalsh(A).clamp_min(0)  # spectral norms from one eigvalsh
    n = A.shape[-1]
    if inverse:
        root_norm = evals[..., -1].sqrt()
        residual = torch.linalg.matrix_norm(out @ A @ out - torch.eye(n, dtype=torch.float64)) / math.sqrt(n)
        allowed = (2 * root_norm + evals[..., -1] * err_bound) * err_bound / math.sqrt(n)
    else:
        residual = torch.linalg.matrix_norm(out @ out - A) / torch.linalg.matrix_norm(A)
        allowed = (2 * evals[..., -1].sqrt() + err_bound) * err_bound / torch.linalg.matrix_norm(A)
    # Floor: forming the residual itself rounds at float64's precision.
    allowed = allowed + 1e-12
    asymmetry = relative_error(out.mT, out)
    return Errors(forward, gradient, residual / allowed, asymmetry)


def check_properties(backend: str, case: Case, inverse: bool) -> None:
    first = run(backend, case, inverse)
    A = first.A
    # Shape and dtype as the input's, for the output and the gradient.
    assert first.out.shape == A.shape and first.out.dtype == A.dtype, (first.out.shape, first.out.dtype)
    assert first.grad.shape == A.shape and first.grad.dtype == A.dtype, (first.grad.shape, first.grad.dtype)
    # Finite PSD input: finite output and gradient.
    assert torch.isfinite(first.out).all(), "non-finite output"
    assert torch.isfinite(first.grad).all(), "non-finite gradient"
    # Deterministic: the same input twice gives bitwise the same output and gradient.
    second = run(backend, case, inverse)
    assert torch.equal(first.out, second.out), "output differs between two identical calls"
    assert torch.equal(first.grad, second.grad), "gradient differs between two identical calls"
    if A.numel() == 0:
        return
    bound = declared_bound(backend, inverse=inverse, dtype=case.dtype, kappa=case.kappa)
    if bound is None:
        return  # undeclared: the properties above still hold for it
    errors = measure(first, inverse, bound.forward)
    check_against_bound(errors, bound)


def check_against_bound(errors: Errors, bound: AccuracyBound) -> None:
    worst = float(errors.forward.max())
    assert worst <= bound.forward, f"forward error {worst:.3g} > declared {bound.forward:.3g}"
    worst = float(errors.residual.max())
    assert worst <= 1.0, f"residual {worst:.3g} x what the forward bound allows"
    # Y - Y^T = E - E^T for Y = S + E, so the asymmetry is at most twice the forward error.
    worst = float(errors.asymmetry.max())
    assert worst <= 2 * bound.forward, f"asymmetry {worst:.3g} > 2 x declared {bound.forward:.3g}"
    if math.isfinite(bound.gradient):
        worst = float(errors.gradient.max())
        assert worst <= bound.gradient, f"gradient error {worst:.3g} > declared {bound.gradient:.3g}"


@pytest.mark.parametrize("backend", sl.list_backends())
@PROPERTY_SETTINGS
@given(case=cases(inverse=False))
# Sizes at which the minimax schedule's Remez solve once divided by zero in float64.
@example(case=Case(n=3, batch=(3,), dtype=torch.float64, log_kappa=1.0))
@example(case=Case(n=12, dtype=torch.float64, log_kappa=3.0))
@example(case=Case(n=100, dtype=torch.float64, log_kappa=2.0))
# Rounding made these singular PSD matrices slightly indefinite: the root came out +-inf (float16,
# before the ridge) and the gradient NaN (float32, before the backward's shrink).
@example(case=Case(n=2, dtype=torch.float16, spectrum="rank-deficient", seed=1))
@example(case=Case(n=4, dtype=torch.float32, spectrum="rank-deficient", log_kappa=1.875, log_scale=0.75))
# The largest number of zero eigenvalues, each of whose roots a ridged iteration gets only roughly.
@example(case=Case(n=160, dtype=torch.bfloat16, spectrum="rank-one", seed=3))
def test_sqrtm_properties(backend: str, case: Case) -> None:
    check_properties(backend, case, inverse=False)


@pytest.mark.parametrize("backend", sl.list_backends())
@PROPERTY_SETTINGS
@given(case=cases(inverse=True))
@example(case=Case(n=3, batch=(3,), dtype=torch.float64, log_kappa=1.0))
@example(case=Case(n=12, dtype=torch.float64, log_kappa=3.0))
@example(case=Case(n=100, dtype=torch.float64, log_kappa=2.0))
def test_inv_sqrtm_properties(backend: str, case: Case) -> None:
    check_properties(backend, case, inverse=True)


@pytest.mark.parametrize("root_kind", list(ROOTS))
@pytest.mark.parametrize("backend", sl.list_backends())
@PROPERTY_SETTINGS
@given(
    case=cases(inverse=True, max_n=16),
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
    where=st.tuples(st.integers(0, 15), st.integers(0, 15)),
)
def test_non_finite_input_gives_nan_or_error(backend: str, root_kind: str, case: Case, value: float, where: tuple[int, int]) -> None:
    """A NaN or Inf anywhere in a matrix (either triangle) gives NaN in that matrix's output,
    never a finite one; the other matrices of the batch are unaffected."""
    A = replace(case, batch=(2,)).matrix()
    i, j = where[0] % case.n, where[1] % case.n
    A[1, i, j] = value
    try:
        out = ROOTS[root_kind](A, backend=backend)
    except (ValueError, RuntimeError) as error:
        assert "finite" in str(error) or "nan" in str(error).lower(), f"unclear error: {error}"
        return
    assert torch.isnan(out[1]).any(), f"finite output for a matrix holding {value} at {(i, j)}"
    assert torch.isfinite(out[0]).all(), "a non-finite matrix spoiled another matrix of the batch"
