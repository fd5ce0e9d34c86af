r"""The ``accurate`` method as one fused Triton kernel per direction: the whole iteration on chip.

:mod:`sqrtlayers.backends.accurate` runs the minimax coupled iteration as batched products, one
kernel launch per product (29 forward and 48 backward for ``sqrtm`` at the defaults). Here one
*program* (one thread block) owns one matrix and runs every step with its matrices held on chip;
the batch is the grid. That this beats the batched products for the small matrices of covariance
pooling and ZCA whitening is an estimate from the launch count (one launch per direction instead
of 77), not a measurement: no GPU run of this code has been recorded (``docs/BENCHMARKS.md``).
The method is described in ``docs/METHODS.md`` (section "accurate").

Layout:
    Program ``i`` loads matrix ``i`` of the flattened ``(B, n, n)`` batch into a ``BLOCK x BLOCK``
    tile (:func:`~sqrtlayers.backends.fused_limits.fused_block`). Rows and columns ``>= n`` are
    masked: they load as zero and the terms ``a I`` touch only the first ``n`` diagonal entries,
    so the padding stays exactly zero through every product. The forward keeps four to five
    tiles live, the backward five to six; ``tl.dot`` stages its operands in shared memory. What
    each variant asks of each GPU architecture, compiled ahead of time, is in
    ``docs/BENCHMARKS.md`` ("Fused kernel resources"); a configuration that asks for more shared
    memory than the device has is refused before launch
    (:func:`~sqrtlayers.backends.fused_limits.launch_problem`), and ``n >``
    :data:`~sqrtlayers.backends.minimax.FUSED_MAX_N` always.

Precision:
    :data:`~sqrtlayers.backends.minimax.FUSED_DTYPE` only (float16/bfloat16 inputs arrive upcast;
    float64 raises ``TypeError``: use ``impl="torch"``). ``precision="ieee"`` (default) makes
    every ``tl.dot`` a true float32 product, as the torch path computes with TF32 off;
    ``"tf32x3"`` sums three TF32 tensor-core products (high and remainder parts of each operand),
    close to float32 accuracy. Under the interpreter both are the same float32 product, so their
    accuracy and speed on a GPU are for the CUDA test of this module to measure.

Numerics:
    The forward follows ``accurate.coupled_minimax_sqrtm`` operation for operation and the
    backward ``accurate.minimax_lyapunov_solve`` (``backward_steps`` of the schedule's steps, on
    the root shrunk by :data:`~sqrtlayers.backends.minimax.BACKWARD_SHRINK`), with the same
    ridge for float16/bfloat16 inputs (compile-time ``RIDGED``: a float32 input's kernel carries
    none of it). It agrees with ``impl="torch"`` to the rounding of a different summation order:
    at ``kappa = 1e3`` at most ``4e-6`` forward and ``1e-5`` for the gradient (relative
    Frobenius, n = 1 to 64, under the interpreter).

Devices:
    CUDA tensors run a compiled kernel (compute capability 8.0 or newer); CPU tensors run it
    under the Triton interpreter, for tests, when ``TRITON_INTERPRET=1`` is set
    (:func:`triton_available`), decided per call whatever the variable said at import. The
    per-step coefficients are a ``(k, 3)`` float32 tensor cached per schedule and device, so a
    warmed-up call copies nothing from the host and can be captured in a CUDA graph.
"""

# With postponed annotations the kernels' ``tl.constexpr`` hints stay strings, which Triton
# reads as well, and the module imports where Triton is missing.
from __future__ import annotations

import functools
import os
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import validate_square_input
from .fused_limits import fused_block, fused_num_warps, launch_problem
from .minimax import BACKWARD_SHRINK, FUSED_MAX_N, PRECISIONS, Quintic, check_fused_dtype

try:  # Triton is optional: without it this module still imports and reports unavailability.
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - depends on the installation (ImportError, broken CUDA libs)
    triton = None
    tl = None

__all__ = ["fused_minimax_sqrtm", "triton_available", "device_limits"]


def triton_available(device: torch.device | str) -> bool:
    """Whether :func:`fused_minimax_sqrtm` can run on ``device``; never raises.

    True when Triton imports and either ``device`` is a CUDA device of compute capability 8.0 or
    newer, or ``device`` is the CPU and ``TRITON_INTERPRET=1`` is set (the interpreter).

    Example:
        >>> triton_available("cpu") == (triton is not None and os.environ.get("TRITON_INTERPRET") == "1")
        True
    """
    if triton is None:
        return False
    try:
        device = torch.device(device)
        if device.type == "cuda":
            return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)
        if device.type == "cpu":
            return os.environ.get("TRITON_INTERPRET", "0") == "1"
    except Exception:  # a bad device string or a broken driver means "not available", not a crash
        return False
    return False


def device_limits(device: torch.device | str) -> tuple[int, int] | None:
    """``(arch, shared memory per block in bytes)`` of a CUDA ``device`` (``arch = 10 * major +
    minor``; the device's own opt-in maximum), as
    :func:`~sqrtlayers.backends.fused_limits.launch_problem` takes them; ``None`` for any other
    device (the interpreter has no limit) or where CUDA cannot say."""
    try:
        device = torch.device(device)
        if device.type != "cuda" or not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability(device)
        limit = torch.cuda.get_device_properties(device).shared_memory_per_block_optin
        return 10 * major + minor, int(limit)
    except Exception:  # a bad device string or a broken driver: nothing to say
        return None


# Kernels: plain functions that `_compiled` turns into Triton kernels on first use, compiled for
# CUDA tensors and interpreted for CPU tensors, whatever TRITON_INTERPRET said at import time.

def _add(a, b):
    return a + b


def _maximum(a, b):
    return tl.maximum(a, b)


if triton is not None:
    from triton.runtime.jit import JITFunction

    # Whole-tile reductions call `tl.reduce` with a combine function, not `tl.sum`/`tl.max`
    # (library `@triton.jit` functions, fixed as compiled or interpreted at Triton's import).
    # Triton's own combine functions let the interpreter reduce with numpy; ours are the fallback
    # should a Triton version rename them (correct, but slow under the interpreter).
    _add = getattr(tl.standard, "_sum_combine", None) or JITFunction(_add)
    _maximum = getattr(tl.standard, "_elementwise_max", None) or JITFunction(_maximum)


def _forward_kernel(
    A_ptr,
    Y_ptr,
    Z_ptr,
    out_ptr,
    u_ptr,
    coef_ptr,
    n,
    ridge,
    NUM_STEPS: tl.constexpr,
    BLOCK: tl.constexpr,
    INVERSE: tl.constexpr,
    PRECISION: tl.constexpr,
    RIDGED: tl.constexpr,
):
    """Program ``i``: ``Y, Z ~ (A_i/u)^{±1/2}``, ``u`` and the requested output for matrix ``i``;
    with ``RIDGED`` the iteration runs on the ridged matrix and ``Y`` is the root without the
    ridge, as in ``accurate.coupled_minimax_sqrtm``."""
    pid = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK)[:, None]
    cols = tl.arange(0, BLOCK)[None, :]
    inside = (rows < n) & (cols < n)
    offsets = pid * n * n + rows * n + cols
    # `a I` is added where this mask holds, not as `a * identity`: the mask is recomputed from
    # the indices at no cost, an identity tile would hold registers through the loop.
    diagonal = (rows == cols) & (rows < n)

    A = tl.load(A_ptr + offsets, mask=inside, other=0.0)
    # Frobenius norm scaled by the largest entry first: squaring raw entries overflows past 1e19.
    # The floors are float32 `tiny` and `eps`, as in the torch path (literals: no globals here),
    # applied with `where` because `tl.maximum` may drop a NaN on the GPU: a NaN or Inf entry
    # must reach the scale (through the sum when the max reduction drops it) and give NaN.
    largest = tl.reduce(tl.abs(A), None, _maximum)
    largest = tl.where(largest < 1.1754943508222875e-38, 1.1754943508222875e-38, largest)
    A_m = A / largest
    norm = tl.sqrt(tl.reduce(A_m * A_m, None, _add)) * largest
    norm = tl.where(norm < 1.1754943508222875e-38, 1.1754943508222875e-38, norm)
    A_n = A / norm
    A_n2 = tl.dot(A_n, A_n, input_precision=PRECISION)
    # r = (tr A_n^4)^{1/4} >= lambda_max(A_n); the floor only guards a zero matrix.
    r = tl.sqrt(tl.sqrt(tl.reduce(A_n2 * A_n2, None, _add)))
    r = tl.where(r < 1.1920928955078125e-07, 1.1920928955078125e-07, r)
    if RIDGED:
        # Scaled by (1 + rho) as well, so that A_s + rho' I, rho' = rho / (1 + rho), stays
        # within [0, 1] (the quintics diverge just above 1).
        r = r * (1.0 + ridge)
        ridge = ridge / (1.0 + ridge)
    A_s = A_n / r
    A_s2 = A_n2 / (r * r)
    if RIDGED:
        # (A_s + rho' I)^2 = A_s^2 + 2 rho' A_s + rho'^2 I: still no product of its own.
        A_s2 = A_s2 + (2.0 * ridge) * A_s
        A_s2 = tl.where(diagonal, A_s2 + ridge * ridge, A_s2)
        A_s = tl.where(diagonal, A_s + ridge, A_s)

    # Step 0 has Z = I, X = A_s: T = a I + b A_s + c A_s^2 from the A_n^2 already computed.
    a = tl.load(coef_ptr)
    b = tl.load(coef_ptr + 1)
    c = tl.load(coef_ptr + 2)
    T = b * A_s + c * A_s2
    T = tl.where(diagonal, T + a, T)
    Y = tl.dot(A_s, T, input_precision=PRECISION)
    Z = T
    for k in range(1, NUM_STEPS):
        a = tl.load(coef_ptr + 3 * k)
        b = tl.load(coef_ptr + 3 * k + 1)
        c = tl.load(coef_ptr + 3 * k + 2)
        X = tl.dot(Z, Y, input_precision=PRECISION)
        T = b * X + c * tl.dot(X, X, input_precision=PRECISION)
        T = tl.where(diagonal, T + a, T)
        Y_next = tl.dot(Y, T, input_precision=PRECISION)
        Z = tl.dot(T, Z, input_precision=PRECISION)
        Y = Y_next
    if RIDGED:
        # The root without the ridge: Y - Z (rho/2 I + rho^2/8 Z^2 + 3 rho^3/8 Z^4), as in
        # accurate._unridge (second order at a definite eigenvalue, exact at a zero one).
        Z2 = tl.dot(Z, Z, input_precision=PRECISION)
        P = (0.125 * ridge * ridge) * (Z2 + (3.0 * ridge) * tl.dot(Z2, Z2, input_precision=PRECISION))
        P = tl.where(diagonal, P + 0.5 * ridge, P)
        Y = Y - tl.dot(Z, P, input_precision=PRECISION)
    # Symmetric in exact arithmetic; averaging with the transpose removes the rounding drift.
    Y = 0.5 * (Y + tl.trans(Y))
    Z = 0.5 * (Z + tl.trans(Z))

    tl.store(Y_ptr + offsets, Y, mask=inside)
    tl.store(Z_ptr + offsets, Z, mask=inside)
    u = norm * r
    tl.store(u_ptr + pid, u)
    root_u = tl.sqrt(u)
    if INVERSE:
        tl.store(out_ptr + offsets, Z / root_u, mask=inside)
    else:
        tl.store(out_ptr + offsets, Y * root_u, mask=inside)


def _backward_kernel(
    Y_ptr,
    Z_ptr,
    u_ptr,
    grad_ptr,
    grad_in_ptr,
    coef_ptr,
    n,
    NUM_STEPS: tl.constexpr,
    BLOCK: tl.constexpr,
    INVERSE: tl.constexpr,
    PRECISION: tl.constexpr,
    SHRINK: tl.constexpr,
):
    """Program ``i``: the gradient of matrix ``i`` from the saved normalised root(s) and ``u``."""
    pid = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK)[:, None]
    cols = tl.arange(0, BLOCK)[None, :]
    inside = (rows < n) & (cols < n)
    offsets = pid * n * n + rows * n + cols
    diagonal = (rows == cols) & (rows < n)

    # Iterate on s B, s = SHRINK = minimax.BACKWARD_SHRINK, whose spectrum stays below 1 where
    # the quintics converge, and undo it at the end (s B X' + X' s B = C gives X = s X').
    B = SHRINK * tl.load(Y_ptr + offsets, mask=inside, other=0.0)
    G = tl.load(grad_ptr + offsets, mask=inside, other=0.0)
    # Only the symmetric part of G counts: the exact gradient for every symmetric
    # parametrisation of A, and it keeps C symmetric below.
    G = 0.5 * (G + tl.trans(G))
    u = tl.load(u_ptr + pid)
    root_u = tl.sqrt(u)
    if INVERSE:
        # out = Z / sqrt(u), and d(S^{-1}) = -S^{-1} dS S^{-1}: the root's gradient is
        # -(out G out) = -(Z G Z) / u, then / sqrt(u) for the scale as in the sqrt case.
        Z = tl.load(Z_ptr + offsets, mask=inside, other=0.0)
        ZG = tl.dot(Z, G, input_precision=PRECISION)
        C = -tl.dot(ZG, Z, input_precision=PRECISION) / (u * root_u)
        C = 0.5 * (C + tl.trans(C))  # the products' rounding breaks the symmetry used below
    else:
        C = G / root_u

    # Sign iteration on M = [[B, C], [0, -B]] with q_k(M) = M P(M^2), P(w) = a + b w + c w^2:
    # M^2 = [[W, D], [0, W]] with W = B^2, D = B C - C B, and the new top-right block is
    # C P(W) + B dP, dP = b D + c (W D + D W). C symmetric makes D skew, so C B = (B C)^T and
    # D W = -(W D)^T: seven products a step (six in the last), where a general C needs nine.
    for k in range(0, NUM_STEPS):
        a = tl.load(coef_ptr + 3 * k)
        b = tl.load(coef_ptr + 3 * k + 1)
        c = tl.load(coef_ptr + 3 * k + 2)
        # Ordered so that few tiles are live at once: P is formed after W's last other use.
        W = tl.dot(B, B, input_precision=PRECISION)
        BC = tl.dot(B, C, input_precision=PRECISION)
        D = BC - tl.trans(BC)
        WD = tl.dot(W, D, input_precision=PRECISION)
        dP = b * D + c * (WD - tl.trans(WD))
        P = b * W + c * tl.dot(W, W, input_precision=PRECISION)
        P = tl.where(diagonal, P + a, P)
        C = tl.dot(C, P, input_precision=PRECISION) + tl.dot(B, dP, input_precision=PRECISION)
        C = 0.5 * (C + tl.trans(C))  # symmetric in exact arithmetic: keeps D exactly skew
        if k + 1 < NUM_STEPS:  # the last step needs only C
            B = tl.dot(B, P, input_precision=PRECISION)
    tl.store(grad_in_ptr + offsets, (0.5 * SHRINK) * C, mask=inside)


@functools.lru_cache(maxsize=4)
def _compiled(interpret: bool) -> tuple[Any, Any]:
    """The two kernels, interpreted (CPU tensors) or compiled (CUDA tensors): built here, not
    by ``@triton.jit`` at import, which reads ``TRITON_INTERPRET`` once and for all."""
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(_forward_kernel), InterpretedFunction(_backward_kernel)
    return JITFunction(_forward_kernel), JITFunction(_backward_kernel)


@functools.lru_cache(maxsize=64)
def _coefficients(steps: tuple[Quintic, ...], device: torch.device) -> Tensor:
    """The schedule as a ``(k, 3)`` float32 tensor on ``device``, made once per schedule."""
    return torch.tensor(steps, dtype=torch.float32, device=device).contiguous()


def _launch_forward(
    A3: Tensor, steps: tuple[Quintic, ...], inverse: bool, precision: str, ridge: float = 0.0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(out, Y, Z, u)`` for a contiguous float32 ``(B, n, n)`` batch; ``u`` is ``(B, 1, 1)``."""
    batch, n = A3.shape[0], A3.shape[-1]
    out, Y, Z = torch.empty_like(A3), torch.empty_like(A3), torch.empty_like(A3)
    u = torch.empty(batch, 1, 1, dtype=A3.dtype, device=A3.device)
    if batch == 0:
        return out, Y, Z, u
    block = fused_block(n)
    forward, _ = _compiled(A3.device.type == "cpu")
    coef = _coefficients(steps, A3.device)
    forward[(batch,)](
        A3, Y, Z, out, u, coef, n, float(ridge),
        NUM_STEPS=len(steps), BLOCK=block, INVERSE=inverse, PRECISION=precision, RIDGED=ridge > 0,
        num_warps=fused_num_warps(block),
    )
    return out, Y, Z, u


def _launch_backward(Y: Tensor, Z: Tensor | None, u: Tensor, grad: Tensor, steps: tuple[Quintic, ...], precision: str) -> Tensor:
    """The input gradient for the output gradient ``grad`` after ``len(steps)`` sign-iteration
    steps; ``Z`` given means ``inv_sqrtm``."""
    grad_in = torch.empty_like(grad)
    batch, n = grad.shape[0], grad.shape[-1]
    if batch == 0:
        return grad_in
    block = fused_block(n)
    _, backward = _compiled(grad.device.type == "cpu")
    coef = _coefficients(steps, grad.device)
    inverse = Z is not None
    backward[(batch,)](
        Y, Z if inverse else Y, u, grad, grad_in, coef, n,
        NUM_STEPS=len(steps), BLOCK=block, INVERSE=inverse, PRECISION=precision, SHRINK=BACKWARD_SHRINK,
        num_warps=fused_num_warps(block),
    )
    return grad_in


class _FusedMinimaxSqrtm(torch.autograd.Function):
    @staticmethod
    def forward(
        A: Tensor, steps: tuple[Quintic, ...], backward_steps: int, inverse: bool, precision: str, ridge: float
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        shape = A.shape
        A3 = A.reshape(-1, shape[-2], shape[-1]).contiguous()
        out, Y, Z, u = _launch_forward(A3, steps, inverse, precision, ridge)
        return out.reshape(shape), Y, Z, u

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        _, steps, backward_steps, inverse, precision, _ = inputs
        _, Y, Z, u = output
        ctx.steps, ctx.inverse, ctx.precision = steps[:backward_steps], inverse, precision
        ctx.mark_non_differentiable(Y, Z, u)
        # The backward needs the normalised root, the scale, and for inv_sqrtm the inverse root.
        ctx.save_for_backward(Y, Z if inverse else None, u)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor, *_unused: Tensor) -> tuple[Tensor | None, None, None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        Y, Z, u = ctx.saved_tensors
        shape = grad_out.shape
        grad3 = grad_out.reshape(-1, shape[-2], shape[-1]).contiguous()
        grad_in = _launch_backward(Y, Z, u, grad3, ctx.steps, ctx.precision)
        return grad_in.reshape(shape), None, None, None, None, None


def fused_minimax_sqrtm(
    A: Tensor,
    steps: tuple[Quintic, ...],
    inverse: bool,
    precision: str = "ieee",
    *,
    backward_steps: int | None = None,
    ridge: float = 0.0,
) -> Tensor:
    r"""``A^{1/2}`` (or ``A^{-1/2}`` when ``inverse``) by the minimax coupled iteration, one fused
    Triton program per matrix, with a fused backward (the accelerated Lyapunov sign iteration).

    Same method and schedule as ``sl.get_backend("accurate", impl="torch")``; see the module
    docstring for the layout and numerics.

    Args:
        A: SPD/PSD matrices ``(..., n, n)``, float32, ``1 <= n <=``
            :data:`~sqrtlayers.backends.minimax.FUSED_MAX_N`, on a CUDA device or (under
            ``TRITON_INTERPRET=1``) the CPU; an empty batch is fine. Output: the same shape.
        steps: the per-step quintics ``(a, b, c)``, e.g. ``AccurateBackend().steps_for(n, dtype)``.
        inverse: return the inverse square root instead of the square root.
        precision: ``"ieee"`` (default, true float32 products) or ``"tf32x3"``.
        backward_steps: how many of ``steps`` the backward takes, e.g.
            ``AccurateBackend().backward_steps_for(n, dtype)``. Default: ``None``, all of them.
        ridge: iterate on the matrix shifted by this ridge and take it out of the root (square
            root only; ``AccurateBackend.ridge_for``). Default: ``0.0``.

    Raises:
        ValueError: for a bad argument, or where the kernels ask for more shared memory per
            block than the CUDA device has (the message names both).

    Double backward is not supported (raises ``RuntimeError``).

    Example:
        >>> import os, torch
        >>> from sqrtlayers.backends import AccurateBackend
        >>> if triton_available("cpu"):
        ...     A = torch.diag(torch.tensor([1e-2, 1.0, 4.0]))
        ...     root = fused_minimax_sqrtm(A, AccurateBackend().steps_for(3, A.dtype), inverse=False)
        ...     assert torch.allclose(root, A.sqrt(), atol=1e-6)
    """
    validate_square_input(A)
    check_fused_dtype(A.dtype)
    n = A.shape[-1]
    if n > FUSED_MAX_N:
        raise ValueError(f"the fused Triton kernel holds one matrix on chip and takes n <= {FUSED_MAX_N}, got n={n}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if len(steps) == 0 or any(len(step) != 3 for step in steps):
        raise ValueError(f"steps must be a non-empty tuple of (a, b, c) triples, got {steps!r}")
    if backward_steps is None:
        backward_steps = len(steps)
    if isinstance(backward_steps, bool) or not isinstance(backward_steps, int) or not 1 <= backward_steps <= len(steps):
        raise ValueError(f"backward_steps must be an int in [1, {len(steps)}] (the number of steps) or None, got {backward_steps!r}")
    if not triton_available(A.device):
        raise RuntimeError(
            f"the fused Triton kernel cannot run on device {A.device}: it needs Triton and a CUDA "
            f"device of compute capability >= 8.0, or the CPU with TRITON_INTERPRET=1"
        )
    if not (isinstance(ridge, float) and 0.0 <= ridge < 1.0):
        raise ValueError(f"ridge must be a float in [0, 1), got {ridge!r}")
    if ridge and inverse:
        raise ValueError(f"ridge applies to the square root only, got ridge={ridge!r} with inverse=True")
    limits = device_limits(A.device)
    problem = None if limits is None else launch_problem(n, bool(inverse), precision, ridge > 0, *limits)
    if problem is not None:
        raise ValueError(problem)
    steps = tuple(tuple(float(x) for x in step) for step in steps)
    return _FusedMinimaxSqrtm.apply(A, steps, backward_steps, bool(inverse), precision, ridge)[0]
