"""No host synchronisation and no data-dependent Python branching in the iterative backends."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled(X)
        out.square().sum().backward()
    # Nothing may be computed while tracing (Dynamo warns about lru_cache'd schedules, say).
    assert [str(w.message) for w in caught] == []
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


# (name, options): every iterative backend, ``mpa`` with its matrix-product solve (a batched LU
# solve could not be captured), ``accurate`` with both of its implementations.
CAPTURABLE = [
    (name, {"solver": "newton"} if name.startswith("mpa") else {}) for name in ITERATIVE if name != "accurate"
] + [("accurate", {"impl": "torch"}), ("accurate", {"impl": "triton"})]


@requires_cuda
@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
@pytest.mark.parametrize(("name", "options"), CAPTURABLE, ids=[f"{n}-{o}" for n, o in CAPTURABLE])
def test_cuda_graph_capture(name: str, options: dict, inverse: bool) -> None:
    """Forward + backward captured in a CUDA graph and replayed on new data: no host sync."""
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


# Batched matrix products as ATen sees them (``@`` on 3-D tensors dispatches to bmm).
_PRODUCTS = {torch.ops.aten.mm.default, torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default, torch.ops.aten.addmm.default}


class _ProductCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.products = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.products += func in _PRODUCTS
        return func(*args, **(kwargs or {}))


def _count_products(backend: sl.SqrtmBackend, n: int, dtype: torch.dtype, inverse: bool) -> tuple[int, int]:
    A = make_spd(n, 1e4, batch=(3,), dtype=dtype).requires_grad_()
    with _ProductCounter() as forward:
        out = backend.inv_sqrtm(A) if inverse else backend.sqrtm(A)
    with _ProductCounter() as backward:
        out.backward(torch.randn_like(out))
    return forward.products, backward.products


@pytest.mark.parametrize("n", [7, 64, 200])
@pytest.mark.parametrize("inverse", [False, True], ids=["sqrt", "inv_sqrt"])
def test_accurate_product_budget(n: int, inverse: bool) -> None:
    """Forward+backward of ``accurate`` at its defaults in float32: at most 80 batched products
    (77 for the root, 80 for the inverse root), counted as ATen dispatches them."""
    backend = sl.get_backend("accurate", impl="torch")
    forward, backward = _count_products(backend, n, torch.float32, inverse)
    steps = len(backend.steps_for(n, torch.float32))
    back_steps = backend.backward_steps_for(n, torch.float32)
    assert forward == 4 * steps - (2 if inverse else 3)
    assert backward == 7 * back_steps - 1 + (2 if inverse else 0)
    assert forward + backward <= 80, (forward, backward)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_accurate_half_precision_root_pays_four_products_for_its_ridge(dtype: torch.dtype) -> None:
    """``Z`` in the last step and three products to take the ridge out again; the backward is
    the float32 one: 81 in all, one over the float32 budget."""
    backend = sl.get_backend("accurate", impl="torch")
    forward, backward = _count_products(backend, 64, dtype, inverse=False)
    steps = len(backend.steps_for(64, torch.float32))
    assert forward == 4 * steps - 3 + 4
    assert backward == 7 * backend.backward_steps_for(64, torch.float32) - 1
    assert forward + backward == 81, (forward, backward)


def test_accurate_without_grad_skips_the_unused_last_product() -> None:
    backend = sl.get_backend("accurate", impl="torch")
    A = make_spd(16, 1e2, dtype=torch.float32)
    with _ProductCounter() as counter:
        backend.inv_sqrtm(A)
    assert counter.products == 4 * len(backend.steps_for(16, torch.float32)) - 3
