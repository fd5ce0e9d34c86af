"""The exact backend: accuracy bounds, and a finite closed-form gradient where autograd through
``eigh`` breaks (identity, repeated and zero eigenvalues)."""

from __future__ import annotations

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.reference import exact_sqrtm_grad, make_spd, measure_errors, relative_error

# (forward, gradient) bounds, float32, n = 64 (issue: sqrt 1e-5 / 1e-4, inverse 1e-4 / 1e-3).
BOUNDS = {False: (1e-5, 1e-4), True: (1e-4, 1e-3)}


@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
@pytest.mark.parametrize("kappa", [1e1, 1e2, 1e3, 1e4])
def test_float32_accuracy_up_to_kappa_1e4(kappa: float, inverse: bool) -> None:
    # Float32 LAPACK eigh error varies with the eigenvectors (one matrix in eight at kappa=1e4
    # is ~5x worse than the rest), so the bound is on the median over 8 matrices.
    A = make_spd(64, kappa, batch=(8,), seed=0)
    fwd, grad = measure_errors("eigh", A, inverse=inverse, dtype=torch.float32)
    fwd_bound, grad_bound = BOUNDS[inverse]
    assert fwd.median() <= fwd_bound, f"forward {fwd.median():.2e}"
    assert grad.median() <= grad_bound, f"gradient {grad.median():.2e}"


@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
def test_gradient_at_identity(inverse: bool) -> None:
    # Autograd through eigh divides by lambda_i - lambda_j = 0 here; the closed form does not.
    A = torch.eye(5, dtype=torch.float64).requires_grad_()
    G = torch.randn(5, 5, dtype=torch.float64)
    (sl.inv_sqrtm if inverse else sl.sqrtm)(A, backend="eigh").backward(G)
    # sqrt: S = I so X = G / 2; inverse: -Z G Z / 2 = -G / 2. The symmetric part of A is what
    # is read, so the gradient is that of G's symmetric part.
    G_sym = (G + G.mT) / 2
    torch.testing.assert_close(A.grad, -G_sym / 2 if inverse else G_sym / 2)


@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
def test_gradient_with_repeated_eigenvalues(inverse: bool) -> None:
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    evals = torch.tensor([0.5, 0.5, 0.5, 2.0, 2.0, 3.0], dtype=torch.float64)
    A = ((Q * evals) @ Q.mT).requires_grad_()
    G = torch.randn(6, 6, dtype=torch.float64)
    G = (G + G.mT) / 2  # the symmetric part of A is read: the gradient of a symmetric G
    (sl.inv_sqrtm if inverse else sl.sqrtm)(A, backend="eigh").backward(G)
    assert torch.isfinite(A.grad).all()
    assert relative_error(A.grad, exact_sqrtm_grad(A.detach(), G, inverse)) < 1e-10
    # The gradient must solve the Lyapunov equation S X + X S = G (sqrt case).
    if not inverse:
        S = sl.sqrtm(A.detach(), backend="eigh")
        torch.testing.assert_close(S @ A.grad + A.grad @ S, G)


def test_gradient_of_psd_with_zero_eigenvalue_is_finite_least_norm() -> None:
    """Documented: components between two zero eigenvalues get gradient 0 (the least-norm
    solution of the singular Lyapunov equation); the rest is the exact closed form."""
    evals = torch.tensor([0.0, 0.0, 1.0, 4.0, 9.0], dtype=torch.float64)
    A = torch.diag(evals).requires_grad_()
    G = torch.randn(5, 5, dtype=torch.float64)
    G = (G + G.mT) / 2  # the symmetric part of A is read: the gradient of a symmetric G
    Y = sl.sqrtm(A, backend="eigh")
    Y.backward(G)
    assert torch.isfinite(Y).all() and torch.isfinite(A.grad).all()
    s = evals.sqrt()
    denom = s[:, None] + s[None, :]
    expected = torch.where(denom > 0, G / denom.clamp_min(1e-300), torch.zeros_like(G))
    torch.testing.assert_close(A.grad, expected)
    # Rotated, the zero eigenvalues come out of eigh as rounding noise: still finite.
    Q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    B = (Q @ A.detach() @ Q.mT).float().requires_grad_()
    sl.sqrtm(B, backend="eigh").backward(G.float())
    assert torch.isfinite(B.grad).all()


def test_inverse_root_of_singular_matrix_is_finite() -> None:
    A = torch.diag(torch.tensor([0.0, 1.0, 4.0])).requires_grad_()
    Z = sl.inv_sqrtm(A, backend="eigh")
    Z.sum().backward()
    assert torch.isfinite(Z).all() and torch.isfinite(A.grad).all()
    torch.testing.assert_close(Z[1:, 1:], torch.diag(torch.tensor([1.0, 0.5])))
    assert Z[0, 0] > 1e3  # of order 1 / floor, as documented


def test_rounding_level_negative_eigenvalues_are_clamped() -> None:
    """Documented: within the cone's rounding margin eigh clamps negative eigenvalues to zero;
    beyond it the root is NaN, as for every backend (test_input_rules.py)."""
    A = torch.diag(torch.tensor([-1e-17, 4.0], dtype=torch.float64))
    torch.testing.assert_close(sl.sqrtm(A, backend="eigh"), torch.diag(torch.tensor([0.0, 2.0], dtype=torch.float64)))
    assert sl.sqrtm(torch.diag(torch.tensor([-1e-3, 4.0], dtype=torch.float64)), backend="eigh").isnan().all()


def test_svd_is_an_alias_of_eigh() -> None:
    A = make_spd(8, 10.0, dtype=torch.float32)
    torch.testing.assert_close(sl.sqrtm(A, backend="svd"), sl.sqrtm(A, backend="eigh"))
    assert sl.get_backend("svd").name == "svd"
