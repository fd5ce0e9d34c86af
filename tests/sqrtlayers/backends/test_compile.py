"""No host synchronisation and no data-dependent Python branching in the iterative backends."""

from __future__ import annotations

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.reference import make_spd

from ...conftest import requires_cuda
from .conftest import is_iterative

ITERATIVE = [name for name in sl.list_backends() if is_iterative(name)]


def _fwd_bwd(backend: sl.SqrtmBackend, inverse: bool):
    def step(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        A = A.detach().requires_grad_()
        out = backend.inv_sqrtm(A) if inverse else backend.sqrtm(A)
        (grad,) = torch.autograd.grad(out.square().sum(), A)
        return out, grad

    return step


@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
@pytest.mark.parametrize("name", ITERATIVE)
def test_compiles_with_fullgraph(name: str, inverse: bool) -> None:
    torch._dynamo.reset()
    backend = sl.get_backend(name)
    if name.startswith("mpa"):
        backend = sl.get_backend(name, solver="newton")
    A = make_spd(6, 10.0, batch=(2,), dtype=torch.float32)

    def fn(X: torch.Tensor) -> torch.Tensor:
        return backend.inv_sqrtm(X) if inverse else backend.sqrtm(X)

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    X = A.clone().requires_grad_()
    out = compiled(X)
    out.square().sum().backward()
    X_ref = A.clone().requires_grad_()
    ref = fn(X_ref)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(X.grad, X_ref.grad)


@pytest.mark.parametrize("name", ["mpa", "mpa-lya"])
def test_lu_solver_also_compiles(name: str) -> None:
    torch._dynamo.reset()
    A = make_spd(6, 10.0, dtype=torch.float32)
    compiled = torch.compile(lambda X: sl.sqrtm(X, backend=name), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(A), sl.sqrtm(A, backend=name))


@requires_cuda
@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
@pytest.mark.parametrize("name", ITERATIVE)
def test_cuda_graph_capture(name: str, inverse: bool) -> None:
    """Forward + backward captured in a CUDA graph and replayed on new data. ``mpa``'s LU solve
    is replaced by ``solver='newton'`` (matrix products only), the capturable path."""
    options = {"solver": "newton"} if name.startswith("mpa") else {}
    step = _fwd_bwd(sl.get_backend(name, **options), inverse=inverse)
    static_A = make_spd(32, 10.0, batch=(8,), dtype=torch.float32, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step(static_A)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out, static_grad = step(static_A)
    new_A = make_spd(32, 20.0, batch=(8,), dtype=torch.float32, device="cuda", seed=7)
    static_A.copy_(new_A)
    graph.replay()
    out, grad = step(new_A)
    torch.testing.assert_close(static_out, out)
    torch.testing.assert_close(static_grad, grad)
