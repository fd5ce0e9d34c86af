"""The Lyapunov sign-iteration backward against the exact closed form, and what it keeps."""

from __future__ import annotations

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.backends.lyapunov import lyapunov_sign_iteration
from sqrtlayers.reference import exact_sqrtm, exact_sqrtm_grad, make_spd, relative_error

# Gradient error of the sign iteration alone (exact S, float64), 8 steps, per kappa of A:
# an eigenvalue mu of S / sqrt(||A||_F) needs about log_1.5(1/mu) steps before it converges.
SIGN_ITERATION_BOUNDS = {1e1: 1e-6, 1e2: 0.2, 1e4: 0.9}


@pytest.mark.parametrize("kappa", list(SIGN_ITERATION_BOUNDS))
def test_sign_iteration_solves_lyapunov_equation(kappa: float) -> None:
    A = make_spd(32, kappa, batch=(2,), seed=1)
    S = exact_sqrtm(A)
    G = torch.randn(2, 32, 32, dtype=torch.float64)
    scale = torch.linalg.matrix_norm(A, keepdim=True).sqrt()
    X = lyapunov_sign_iteration(S, G, scale, 8)
    err = relative_error(X, exact_sqrtm_grad(A, G)).max()
    assert err <= SIGN_ITERATION_BOUNDS[kappa]


def test_sign_iteration_converges_with_more_steps() -> None:
    A = make_spd(32, 1e4, seed=1)
    S = exact_sqrtm(A)
    G = torch.randn(32, 32, dtype=torch.float64)
    scale = torch.linalg.matrix_norm(A, keepdim=True).sqrt()
    errors = [float(relative_error(lyapunov_sign_iteration(S, G, scale, k), exact_sqrtm_grad(A, G))) for k in (8, 16, 30)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-10


# The full -lya backends, float64 (so only the method's approximation shows): gradient error
# bound per (backend, kappa, inverse). Measured: mpa-lya 1.7e-2 / 7.6e-2 at 1e1, 2.0e-1 / 6.5e-1
# at 1e2, 8.0e-1 at 1e4. Cells where the method has failed (error ~1, which a zero gradient
# would also give) are left out: they could not tell a broken backward from the paper's.
LYA_GRADIENT_BOUNDS = {
    ("mpa-lya", 1e1, False): 3e-2,
    ("mpa-lya", 1e1, True): 0.15,
    ("mpa-lya", 1e2, False): 0.3,
    ("mpa-lya", 1e2, True): 0.8,
    ("mpa-lya", 1e4, False): 0.9,
    ("mtp-lya", 1e1, False): 0.2,
    ("mtp-lya", 1e1, True): 0.8,
    ("mtp-lya", 1e2, False): 0.6,
    ("ns-lya", 1e1, False): 0.8,
    ("ns-lya", 1e1, True): 0.7,
    ("ns-lya", 1e2, False): 0.9,
}


@pytest.mark.parametrize(("name", "kappa", "inverse"), list(LYA_GRADIENT_BOUNDS), ids=str)
def test_lya_backend_gradient_vs_closed_form(name: str, kappa: float, inverse: bool) -> None:
    A = make_spd(64, kappa, seed=0).requires_grad_()
    G = torch.randn(64, 64, dtype=torch.float64)
    G = (G + G.mT) / 2
    (sl.inv_sqrtm if inverse else sl.sqrtm)(A, backend=name).backward(G)
    err = relative_error(A.grad, exact_sqrtm_grad(A.detach(), G, inverse))
    assert torch.isfinite(A.grad).all()
    assert err <= LYA_GRADIENT_BOUNDS[name, kappa, inverse]


def test_more_lya_iterations_improve_the_gradient() -> None:
    A = make_spd(32, 1e2, seed=2).requires_grad_()
    G = torch.randn(32, 32, dtype=torch.float64)
    G = (G + G.mT) / 2  # the symmetric part of A is read: the gradient of a symmetric G
    errors = []
    for lya_iters in (8, 20):
        A.grad = None
        sl.sqrtm(A, backend=sl.get_backend("ns-lya", iters=40, lya_iters=lya_iters)).backward(G)
        errors.append(float(relative_error(A.grad, exact_sqrtm_grad(A.detach(), G))))
    assert errors[1] < errors[0] / 100


@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
@pytest.mark.parametrize("name", ["mpa-lya", "mtp-lya", "ns-lya"])
def test_lya_backward_keeps_only_the_roots(name: str, inverse: bool) -> None:
    """A -lya backward saves S (and Z for the inverse) plus a per-matrix scale: never iterates."""
    n, batch = 16, 3
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    A = make_spd(n, 10.0, batch=(batch,), dtype=torch.float32).requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = (sl.inv_sqrtm if inverse else sl.sqrtm)(A, backend=name)
    matrices = [t for t in saved if t.shape[-2:] == (n, n)]
    others = [t for t in saved if t.shape[-2:] != (n, n)]
    assert len(matrices) == (2 if inverse else 1)
    assert len(others) == 1 and others[0].numel() == batch  # the per-matrix scale
    out.sum().backward()


def test_autograd_backend_does_keep_iterates() -> None:
    """Contrast for the test above: autograd through the forward saves many matrices."""
    saved: list[torch.Tensor] = []
    A = make_spd(16, 10.0, dtype=torch.float32).requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        sl.sqrtm(A, backend="mpa")
    assert sum(t.shape[-2:] == (16, 16) for t in saved) > 5
