"""Rules every registered backend keeps; parametrised over ``list_backends()``, so a backend is
tested the moment it is registered."""

from __future__ import annotations

import math

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.reference import exact_sqrtm, make_spd, measure_errors, relative_error

from .conftest import has_custom_backward, tolerance

ROOTS = {"sqrt": sl.sqrtm, "inv_sqrt": sl.inv_sqrtm}


@pytest.fixture(params=list(ROOTS))
def root_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_gradient_accuracy(backend_name: str, root_kind: str, dtype: torch.dtype) -> None:
    A = make_spd(8, 4.0, batch=(3,), seed=3)
    fwd, grad = measure_errors(backend_name, A, inverse=root_kind == "inv_sqrt", dtype=dtype)
    fwd_tol, grad_tol = tolerance(backend_name, dtype)
    assert fwd.max() <= fwd_tol, f"forward error {fwd.max():.2e} > {fwd_tol:.1e}"
    assert grad.max() <= grad_tol, f"gradient error {grad.max():.2e} > {grad_tol:.1e}"


def test_any_leading_batch_dims(backend_name: str, root_kind: str) -> None:
    fn = ROOTS[root_kind]
    A = make_spd(6, 4.0, batch=(2, 3), dtype=torch.float32, seed=5)
    out = fn(A, backend=backend_name)
    assert out.shape == A.shape
    one_by_one = torch.stack([fn(A[i, j], backend=backend_name) for i in range(2) for j in range(3)])
    torch.testing.assert_close(out.reshape(6, 6, 6), one_by_one, rtol=1e-4, atol=1e-5)


def test_empty_batch(backend_name: str, root_kind: str) -> None:
    A = torch.empty(0, 5, 5).requires_grad_()
    out = ROOTS[root_kind](A, backend=backend_name)
    assert out.shape == (0, 5, 5)
    out.sum().backward()
    assert A.grad is not None and A.grad.shape == (0, 5, 5)


def test_identity_and_scalar_matrices(backend_name: str, root_kind: str) -> None:
    A = torch.stack([torch.eye(5), 9.0 * torch.eye(5)])
    expected = torch.stack([torch.eye(5), 3.0 * torch.eye(5)])
    if root_kind == "inv_sqrt":
        expected = torch.stack([torch.eye(5), torch.eye(5) / 3.0])
    out = ROOTS[root_kind](A, backend=backend_name)
    assert relative_error(out, expected).max() <= max(tolerance(backend_name, torch.float32)[0], 1e-6)


def test_one_by_one_matrix(backend_name: str, root_kind: str) -> None:
    A = torch.tensor([[[4.0]], [[0.25]]])
    out = ROOTS[root_kind](A, backend=backend_name)
    expected = A.sqrt() if root_kind == "sqrt" else A.rsqrt()
    assert relative_error(out, expected).max() <= max(tolerance(backend_name, torch.float32)[0], 1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(backend_name: str, root_kind: str, dtype: torch.dtype) -> None:
    A64 = make_spd(8, 4.0, batch=(2,), seed=1)
    A = A64.to(dtype).requires_grad_()
    out = ROOTS[root_kind](A, backend=backend_name)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    assert A.grad.dtype == dtype and torch.isfinite(A.grad).all()
    # Same result as the float32 computation, up to rounding to the half type.
    ref = ROOTS[root_kind](A.detach().float(), backend=backend_name)
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)


def test_autocast_region_is_ignored(backend_name: str, root_kind: str) -> None:
    A = make_spd(8, 4.0, batch=(2,), dtype=torch.float32, seed=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ROOTS[root_kind](A, backend=backend_name)
    assert out.dtype == torch.float32
    expected = ROOTS[root_kind](A, backend=backend_name)
    torch.testing.assert_close(out, expected)


def test_configured_backend_object_is_accepted(backend_name: str) -> None:
    backend = sl.get_backend(backend_name)
    A = make_spd(6, 4.0, dtype=torch.float32)
    torch.testing.assert_close(sl.sqrtm(A, backend=backend), backend.sqrtm(A))
    torch.testing.assert_close(sl.inv_sqrtm(A, backend=backend), backend.inv_sqrtm(A))


def test_gradcheck_float64_autograd_backends(backend_name: str, root_kind: str) -> None:
    if has_custom_backward(backend_name):
        pytest.skip("custom backward: compared with the closed form in test_eigh.py and test_lyapunov.py")
    A = make_spd(4, 3.0, seed=4).requires_grad_()
    assert torch.autograd.gradcheck(lambda X: ROOTS[root_kind](X, backend=backend_name), (A,))


def test_double_backward_behaviour(backend_name: str) -> None:
    A = make_spd(4, 3.0, seed=4).requires_grad_()
    if has_custom_backward(backend_name):
        (grad,) = torch.autograd.grad(sl.sqrtm(A, backend=backend_name).sum(), A, create_graph=True)
        with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
            torch.autograd.grad(grad.sum(), A)
    else:
        assert torch.autograd.gradgradcheck(lambda X: sl.sqrtm(X, backend=backend_name), (A,))


def test_psd_with_eps_is_finite(backend_name: str, root_kind: str) -> None:
    # Rank-deficient covariance + eps I (the ZCA case): finite output and gradient.
    X = torch.randn(3, 16, 4, dtype=torch.float64)
    A = (X @ X.mT / 4 + 1e-5 * torch.eye(16, dtype=torch.float64)).float().requires_grad_()
    out = ROOTS[root_kind](A, backend=backend_name)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(A.grad).all()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", [(0, 0), (0, 1), (1, 0)], ids=["diagonal", "upper", "lower"])
def test_non_finite_input_gives_nan(backend_name: str, root_kind: str, value: float, where: tuple[int, int]) -> None:
    """Documented: a NaN or Inf anywhere in a matrix (either triangle, though ``eigh`` reads only
    one) gives NaN in that matrix's output (no error, no host sync); other matrices of the batch
    are unaffected. A ``-inf`` trace once clamped to a tiny positive scale and gave ``inf``."""
    A = torch.stack([torch.eye(4), 2 * torch.eye(4)])
    A[1][where] = value
    out = ROOTS[root_kind](A, backend=backend_name)
    assert torch.isnan(out[1]).any()
    assert torch.isfinite(out[0]).all()
    expected = torch.eye(4)
    assert relative_error(out[0], expected) <= max(tolerance(backend_name, torch.float32)[0], 1e-6)


@pytest.mark.parametrize("scale", [1e-25, 1e-12, 1e12, 1e25])
def test_scale_equivariance_without_underflow(backend_name: str, root_kind: str, scale: float) -> None:
    """(s A)^{±1/2} = s^{±1/2} A^{±1/2}, also where naive squaring of entries would under- or
    overflow float32."""
    A = make_spd(8, 4.0, batch=(2,), dtype=torch.float32, seed=8)
    out = ROOTS[root_kind](scale * A, backend=backend_name)
    factor = scale**0.5 if root_kind == "sqrt" else scale**-0.5
    expected = factor * ROOTS[root_kind](A, backend=backend_name)
    assert torch.isfinite(out).all()
    assert relative_error(out, expected).max() <= max(tolerance(backend_name, torch.float32)[0], 1e-5)


def test_zero_matrix_has_zero_root(backend_name: str) -> None:
    out = sl.sqrtm(torch.zeros(2, 4, 4), backend=backend_name)
    assert torch.isfinite(out).all() and out.abs().max() < 1e-6


def test_result_is_symmetric(backend_name: str, root_kind: str) -> None:
    A = make_spd(8, 10.0, batch=(2,), dtype=torch.float64, seed=6)
    out = ROOTS[root_kind](A, backend=backend_name)
    assert relative_error(out.mT, out).max() < 1e-8


def test_exact_reference_helper_is_exact() -> None:
    A = make_spd(8, 1e3, dtype=torch.float64)
    Y = exact_sqrtm(A)
    assert relative_error(Y @ Y, A) < 1e-12
