"""The input rules every registered backend keeps (:mod:`sqrtlayers.backends.input_rules`):
the symmetric part of a matrix is what is read, and a matrix outside the PSD cone gets a NaN
root while the rest of its batch is unaffected. Parametrised over ``list_backends()``, inputs
drawn by hypothesis."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import sqrtlayers as sl
from sqrtlayers.backends.input_rules import cone_margin, outside_psd_cone

from .test_properties import PROPERTY_SETTINGS

ROOTS = {"sqrt": sl.sqrtm, "inv_sqrt": sl.inv_sqrtm}
DTYPES = (torch.float32, torch.float64)


def spd_from(eigenvalues: torch.Tensor, seed: int) -> torch.Tensor:
    """``Q diag(eigenvalues) Q^T``, ``Q`` random orthogonal, float64, exactly symmetric."""
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=torch.float64))
    A = (Q * eigenvalues) @ Q.mT
    return (A + A.mT) / 2


@pytest.mark.parametrize("root", sorted(ROOTS))
@pytest.mark.parametrize("backend", sl.list_backends())
@PROPERTY_SETTINGS
@given(
    n=st.integers(1, 16),
    log_kappa=st.floats(0.0, 3.0),
    skew=st.floats(1e-3, 1.0),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_the_symmetric_part_is_read(backend, root, n, log_kappa, skew, dtype, seed):
    A_sym = spd_from(torch.logspace(0.0, -log_kappa, n, dtype=torch.float64), seed)
    gen = torch.Generator().manual_seed(seed + 1)
    R = torch.randn(n, n, generator=gen, dtype=torch.float64)
    # A skew-symmetric part (its symmetric part stays SPD) up to the size of the SPD one.
    A = (A_sym + skew * (R - R.mT) / 2).to(dtype).requires_grad_()
    out = ROOTS[root](A, backend=backend)
    # Bitwise the root of the symmetric part: one answer from every backend.
    assert torch.equal(out, ROOTS[root]((A + A.mT).detach() / 2, backend=backend))
    # The symmetric part is exactly symmetric, so an upstream gradient G and its transpose
    # give transposed gradients; a symmetric G gives a symmetric one.
    G = torch.randn(n, n, generator=gen, dtype=torch.float64).to(dtype)
    (grad,) = torch.autograd.grad(out, A, G + G.mT)
    torch.testing.assert_close(grad, grad.mT, rtol=0, atol=0)


@pytest.mark.parametrize("root", sorted(ROOTS))
@pytest.mark.parametrize("backend", sl.list_backends())
@PROPERTY_SETTINGS
@given(
    n=st.integers(2, 16),
    log_negative=st.floats(-2.0, 0.0),
    log_kappa=st.floats(0.0, 3.0),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_outside_the_psd_cone_is_nan(backend, root, n, log_negative, log_kappa, dtype, seed):
    """One eigenvalue ``-10^log_negative`` (largest 1): NaN everywhere for that matrix, the
    SPD matrix beside it in the batch finite and right."""
    spectrum = torch.logspace(0.0, -log_kappa, n, dtype=torch.float64)
    indefinite = spd_from(torch.cat([spectrum[:-1], -(10.0**log_negative) * torch.ones(1, dtype=torch.float64)]), seed)
    spd = spd_from(spectrum, seed + 1)
    out = ROOTS[root](torch.stack([indefinite, spd]).to(dtype), backend=backend)
    assert out[0].isnan().all()
    assert torch.isfinite(out[1]).all()
    # Bitwise what the same batch with an SPD matrix in place of the indefinite one gives.
    alone = ROOTS[root](torch.stack([spd, spd]).to(dtype), backend=backend)[1]
    assert torch.equal(out[1], alone)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_the_cone_margin_separates_rounding_from_indefinite(dtype):
    """A singular PSD matrix rounded to ``dtype`` is inside the cone; one eigenvalue of
    ``-2 delta`` is outside."""
    n = 24
    compute = sl.compute_dtype(dtype)
    singular = spd_from(torch.cat([torch.linspace(1.0, 0.1, n - 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)]), 0)
    assert not outside_psd_cone(singular.to(dtype).to(compute), dtype).any()
    margin = cone_margin(n, dtype, compute) * float(torch.linalg.matrix_norm(singular))
    below = spd_from(torch.cat([torch.linspace(1.0, 0.1, n - 1, dtype=torch.float64), torch.tensor([-2 * margin], dtype=torch.float64)]), 0)
    assert outside_psd_cone(below.to(compute), dtype).all()
    assert not outside_psd_cone(torch.zeros(n, n, dtype=compute)).any()
