r"""Eigh-class accuracy with matrix products only: minimax-accelerated coupled iterations.

The method, its cost and its measured accuracy are described in ``docs/METHODS.md`` (section
"accurate"); this docstring is the short form.

Forward. Scale :math:`A_s = A / u` by :math:`u = \|A^2\|_F^{1/2} = (\operatorname{tr} A^4)^{1/4}`,
an upper bound on :math:`\lambda_{\max}` that is loose by at most :math:`n^{1/4}` and costs the
product :math:`A^2`, which the first step needs anyway. Then run the coupled iteration

.. math::
    X_k = Z_k Y_k,\quad T_k = a_k I + b_k X_k + c_k X_k^2,\quad Y_{k+1} = Y_k T_k,\quad
    Z_{k+1} = T_k Z_k,\qquad Y_0 = A_s,\ Z_0 = I,

so :math:`Y \to A_s^{1/2}` and :math:`Z \to A_s^{-1/2}`. In the eigenbasis, with
:math:`\sigma = \sqrt{x}`, one step maps :math:`\sigma \mapsto q_k(\sigma) = a_k\sigma + b_k\sigma^3 +
c_k\sigma^5`; Newton-Schulz is the fixed choice :math:`q = (15\sigma - 10\sigma^3 + 3\sigma^5)/8`.
Here each :math:`q_k` is the minimax (Remez) approximation of 1 on the interval that the
previous steps leave, as in the "Polar Express" and CANS work on the polar factor: small
eigenvalues grow up to ~25x per step instead of 2.25x, so a condition number of ``1e6``
converges in 8 steps where Newton-Schulz needs ~25. Once the interval is within ``1e-3`` of 1
the minimax quintic is Newton-Schulz's to working precision (and the Remez system degenerates),
so the schedule finishes with Newton-Schulz steps, whose error map :math:`x \mapsto x^3 (20 +
15x + 3x^2)/8` (:math:`\sigma = 1 + x`) is tracked exactly.

Backward. With :math:`B = A_s^{1/2}`, the gradient solves :math:`B X + X B = C`,
:math:`C = \operatorname{sym}(G)/\sqrt{u}`; the sign of :math:`M = [[B, C], [0, -B]]` gives it
(:mod:`sqrtlayers.backends.lyapunov`), and the same minimax quintics accelerate it:
:math:`M \leftarrow q_k(M) = M P_k(M^2)`, :math:`P_k(w) = a_k + b_k w + c_k w^2`. With ``W = B^2``
the blocks are :math:`M^2 = [[W, D], [0, W]]`, ``D = B C - C B``, and the top-right block of
:math:`q_k(M)` is :math:`C P_k(W) + B\,dP` with ``dP = b D + c (W D + D W)``. For symmetric ``C``
every ``C`` stays symmetric and ``D`` skew, so ``C B = (B C)^T`` and ``D W = -(W D)^T``: a step
costs seven products (six in the last), where a general ``C`` needs nine.

Only the symmetric part of the upstream gradient ``G`` is used. That is the exact gradient for
every symmetric parametrisation of ``A`` (a covariance, :math:`X X^T`, :math:`(M + M^T)/2`),
which is the only kind of input a square root of an SPD matrix is defined on; it differs from
the unsymmetrised formula by a skew-symmetric matrix that such a parametrisation annihilates.

The backward's steps come from the same schedule, cut where the scalar iteration is within
``tol ** (2/3)`` of 1: gradients need less than the forward's unit roundoff, so the backward
stops one step before the forward does. Reusing the forward's iterates instead (the diagonal
block's square is the forward's :math:`X_k`) saves two products a step in exact arithmetic but
amplifies rounding by about :math:`\kappa` in the off-diagonal block (measured: gradient error
3e-4 instead of 1.3e-5 at n = 64, kappa = 1e4, float32), so the backward recomputes them.

Cost at the defaults (``kappa=1e6``, float32, ``n <= 256``: 8 steps forward, 7 backward):
``sqrtm`` 29 + 48 = 77 batched products, ``inv_sqrtm`` 30 + 50 = 80 (its backward adds
:math:`-Z G Z`). The backward keeps only the normalised root (and inverse root) and the scale.

The steps and coefficients are fixed at construction from ``kappa`` and the dtype's precision;
nothing depends on the data and nothing is computed while a call is traced, so the backend
compiles with ``fullgraph=True`` and can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import SqrtmBackend, compute_dtype
from .fused import scaled_matmul_add
from .fused_limits import launch_problem
from .minimax import (
    BACKWARD_SHRINK,
    FUSED_MAX_N,
    IMPLS,
    PRECISIONS,
    SIZE_BUCKETS,
    MinimaxSchedule,
    Quintic,
    backward_tol,
    cached_schedule,
    check_kappa,
    sigma_min_for,
    size_bucket,
)
from .normalisation import frobenius_normalise
from .onnx_export import add_to_diagonal

__all__ = [
    "coupled_minimax_sqrtm",
    "minimax_lyapunov_solve",
    "choose_impl",
    "AccurateBackend",
]


def _quintic_factor(X: Tensor, a: float, b: float, c: float) -> Tensor:
    """``a I + b X + c X^2`` in two kernels (a fused multiply-add, then the diagonal).

    In-place on a fresh tensor: these helpers run inside an autograd Function, never recorded.
    """
    T = scaled_matmul_add(X, X, X, beta=b, alpha=c)
    T = add_to_diagonal(T, a)
    return T


def coupled_minimax_sqrtm(
    A: Tensor,
    steps: tuple[Quintic, ...],
    *,
    want_root: bool = True,
    want_inv_root: bool = True,
    ridge: float = 0.0,
) -> tuple[Tensor | None, Tensor | None, Tensor]:
    r"""``(Y, Z, u)`` with ``Y ~ (A/u)^{1/2}``, ``Z ~ (A/u)^{-1/2}`` (both symmetrised) and ``u``
    of shape ``(..., 1, 1)``, for ``A`` float32/float64 ``(..., n, n)``.

    The last step skips the product of an output nobody asked for (``None`` is returned in its
    place): ``4 k - 3`` products for one of the two, ``4 k - 2`` for both.

    ``ridge = rho > 0`` iterates on ``A_s = A/(u (1 + rho)) + rho' I``, ``rho' = rho / (1 + rho)``
    (the spectrum stays in ``[0, 1]``), so that eigenvalues down to about ``-rho`` (the rounding
    of a singular PSD matrix to a coarse dtype) converge rather than diverge, then recovers the
    root of ``A/(u (1 + rho))`` with :func:`_unridge`, returning ``u (1 + rho)`` as the scale. That
    costs four products (``Z`` in the last step, three in :func:`_unridge`); the inverse root is
    returned as iterated (the square root only).
    """
    # Frobenius-normalise first so that squaring neither underflows nor overflows.
    A_n, norm = frobenius_normalise(A)
    A_n2 = A_n @ A_n
    # r = (tr A_n^4)^{1/4} >= lambda_max(A_n), and r >= n^{-1/4} for PSD A_n != 0; the floor only
    # keeps a zero matrix (or garbage input) from dividing by zero.
    r = torch.linalg.matrix_norm(A_n2, keepdim=True).sqrt().clamp_min(torch.finfo(A.dtype).eps)
    if ridge:
        # Scaled by (1 + rho) as well, so that A_s + rho' I, rho' = rho / (1 + rho), stays
        # within [0, 1]: the quintics diverge a few 1e-6 above 1.
        r = r * (1.0 + ridge)
        ridge = ridge / (1.0 + ridge)
    A_s = A_n / r
    A_s2 = A_n2 / (r * r)
    if ridge:
        # (A_s + rho I)^2 = A_s^2 + 2 rho A_s + rho^2 I: still no product of its own.
        A_s2 = torch.add(A_s2, A_s, alpha=2 * ridge)
        A_s2 = add_to_diagonal(A_s2, ridge * ridge)
        A_s = A_s.clone()
        A_s = add_to_diagonal(A_s, ridge)
        want_inv_root = True
    a, b, c = steps[0]
    # Step 0 has Z = I and X = A_s: T is a polynomial in A_s, using the A_n^2 already computed.
    T = torch.add(b * A_s, A_s2, alpha=c)
    T = add_to_diagonal(T, a)
    last = len(steps) - 1
    Y: Tensor | None = A_s @ T if (last > 0 or want_root) else None
    Z: Tensor | None = T
    for k, (a, b, c) in enumerate(steps[1:], start=1):
        T = _quintic_factor(Z @ Y, a, b, c)
        Y = Y @ T if (k < last or want_root) else None
        Z = T @ Z if (k < last or want_inv_root) else None
    if ridge and Y is not None:
        Y = _unridge(Y, Z, ridge)
    # Y and Z are symmetric in exact arithmetic; averaging removes the rounding drift.
    Y = 0.5 * (Y + Y.mT) if want_root else None
    Z = 0.5 * (Z + Z.mT) if want_inv_root else None
    return Y, Z, norm * r


def _unridge(Y: Tensor, Z: Tensor, ridge: float) -> Tensor:
    r"""The root of ``A_s`` from ``Y, Z ~ (A_s + rho I)^{±1/2}``: ``Y - Z (rho/2 I + rho^2/8 Z^2 +
    3 rho^3/8 Z^4)`` (three products).

    Per eigenvalue, :math:`\sqrt{\lambda} = \sqrt{\mu}\, f(w)` with :math:`\mu = \lambda + \rho`,
    :math:`w = \rho/\mu = \rho z^2` and :math:`f(w) = (1 - w)^{1/2}`. The polynomial used,
    :math:`1 - w/2 - w^2/8 - 3w^3/8`, is Taylor's to second order at ``w = 0`` (a definite
    eigenvalue, off by about :math:`\tfrac{5}{16} w^3`) and exact at ``w = 1``: a zero eigenvalue
    keeps a zero root. It is :math:`A_s Z (I - \rho Z^2)^{-1/2}` expanded to second order, with
    :math:`A_s Z = Y - \rho Z`.
    """
    Z2 = Z @ Z
    P = torch.add(Z2, Z2 @ Z2, alpha=3.0 * ridge)  # Z^2 + 3 rho Z^4
    P.mul_(ridge * ridge / 8)
    P = add_to_diagonal(P, ridge / 2)
    return Y - Z @ P


def _skew_from(P: Tensor) -> Tensor:
    """``P - P^T``: ``B C - C B`` from the one product ``P = B C`` when ``B``, ``C`` are symmetric."""
    return P - P.mT


def minimax_lyapunov_solve(B: Tensor, C: Tensor, steps: tuple[Quintic, ...]) -> Tensor:
    r"""``X`` with ``B X + X B = C`` for symmetric ``B`` with spectrum in ``[sigma_min, 1]`` and
    symmetric ``C``, by the accelerated sign iteration :math:`M \leftarrow q_k(M)` on
    :math:`M = [[B, C], [0, -B]]`: seven products a step, six in the last.

    Writing :math:`q(M) = M P(M^2)` with :math:`P(w) = a + b w + c w^2`, the blocks are
    :math:`M^2 = [[W, D], [0, W]]` with ``W = B B``, ``D = B C - C B``, so
    :math:`P(M^2) = [[P(W), dP], [0, P(W)]]`, ``dP = b D + c (W D + D W)``, and the new
    top-right block is :math:`C P(W) + B\,dP`. ``C`` symmetric makes ``D`` skew, so
    ``D = BC - (BC)^T`` and ``W D + D W = WD - (WD)^T``: one product each.

    The iteration runs on :math:`sB`, :math:`s =` :data:`BACKWARD_SHRINK`, and rescales the
    result (:math:`sB X' + X' sB = C` gives :math:`X = s X'`). The composed quintics diverge
    just above :math:`\sigma = 1` (seven float32 steps take ``1 + 1e-5`` to ``5e15``), and a
    computed root lands there when one eigenvalue dominates and the scaling bound is tight
    (measured: ``1 + 5e-5`` for a rank-deficient float32 input, whose gradient was NaN);
    the shrink keeps every eigenvalue inside the converging interval.
    """
    B = BACKWARD_SHRINK * B
    last = len(steps) - 1
    for k, (a, b, c) in enumerate(steps):
        W = B @ B
        D = _skew_from(B @ C)
        P = _quintic_factor(W, a, b, c)
        dP = torch.add(b * D, _skew_from(W @ D), alpha=c)
        C = scaled_matmul_add(C @ P, B, dP, beta=1.0, alpha=1.0)
        C = 0.5 * (C + C.mT)  # symmetric in exact arithmetic: keep D exactly skew next step
        if k < last:
            B = B @ P
    return (0.5 * BACKWARD_SHRINK) * C


class _MinimaxSqrtm(torch.autograd.Function):
    """``A^{1/2}`` or ``A^{-1/2}`` by :func:`coupled_minimax_sqrtm`, gradient by
    :func:`minimax_lyapunov_solve` over the first ``backward_steps`` steps."""

    @staticmethod
    def forward(
        A: Tensor, steps: tuple[Quintic, ...], backward_steps: int, inverse: bool, ridge: float
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        # The backward needs the root in both cases; without a backward, only what is returned.
        want_root = not inverse or backward_steps > 0
        Y, Z, u = coupled_minimax_sqrtm(A, steps, want_root=want_root, want_inv_root=inverse, ridge=ridge)
        root_u = u.sqrt()
        out = Z / root_u if inverse else Y * root_u
        return out, Y, u

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, steps, backward_steps, inverse, _ = inputs
        out, Y, u = output
        ctx.steps = steps[:backward_steps]
        ctx.inverse = inverse
        ctx.mark_non_differentiable(*(t for t in (Y, u) if t is not None))
        ctx.save_for_backward(Y, u, out if inverse else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, *_unused: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        Y, u, inv_root = ctx.saved_tensors
        G = 0.5 * (grad_out + grad_out.mT)
        if ctx.inverse:
            # d(A^{-1/2}) = -A^{-1/2} d(A^{1/2}) A^{-1/2}.
            G = -(inv_root @ G @ inv_root)
        return minimax_lyapunov_solve(Y, G / u.sqrt(), ctx.steps), None, None, None, None


def choose_impl(
    impl: str,
    device_type: str,
    n: int,
    dtype: torch.dtype,
    triton_ok: bool,
    *,
    inverse: bool = False,
    precision: str = "ieee",
    ridged: bool = False,
    device_limits: tuple[int, int] | None = None,
) -> str:
    """Resolve ``impl="auto"``: the fused Triton kernel on CUDA for float32 and ``n <=``
    :data:`~sqrtlayers.backends.minimax.FUSED_MAX_N` when Triton imports and the kernels fit the
    device, batched torch products otherwise; ``"torch"`` passes through.

    ``device_limits`` is ``(arch, shared memory per block in bytes)`` of the CUDA device (see
    :func:`~sqrtlayers.backends.triton_accurate.device_limits`); the kernels' needs come from the
    compiled table (:func:`~sqrtlayers.backends.fused_limits.launch_problem`). ``"auto"`` falls
    back to ``"torch"`` where they do not fit, and an explicit ``"triton"`` raises ``ValueError``
    naming the limit; anything else about an explicit ``"triton"`` the kernel checks itself.

    Example:
        >>> choose_impl("auto", "cuda", 64, torch.float32, triton_ok=True)
        'triton'
        >>> choose_impl("auto", "cuda", 65, torch.float32, triton_ok=True)
        'torch'
        >>> choose_impl("auto", "cuda", 64, torch.float32, triton_ok=True, device_limits=(90, 48 * 1024))
        'torch'
    """
    if impl == "torch":
        return impl
    problem = None
    if device_type == "cuda" and device_limits is not None:
        problem = launch_problem(n, inverse, precision, ridged, *device_limits)
    if impl == "triton":
        if problem is not None:
            raise ValueError(f"impl='triton': {problem}")
        return impl
    fused = device_type == "cuda" and dtype == torch.float32 and n <= FUSED_MAX_N and triton_ok and problem is None
    return "triton" if fused else "torch"


class AccurateBackend(SqrtmBackend):
    r"""Matrix-product-only square root and inverse square root with eigh-class accuracy.

    Forward: coupled iteration with per-step minimax quintics after scaling by
    :math:`(\operatorname{tr} A^4)^{1/4}`; backward: the Lyapunov sign iteration accelerated by
    the same quintics, on the saved root. See :mod:`sqrtlayers.backends.accurate`
    and ``docs/METHODS.md`` for the method.

    Args:
        kappa: the largest condition number :math:`\lambda_{\max}/\lambda_{\min}` to converge
            for. Eigenvalues below :math:`\lambda_{\max}/\kappa` still come out finite, but less
            accurate. Default: ``1e6`` (8 steps forward, 7 backward, in float32).
        tol: convergence target of the scalar iteration; ``None`` (default) picks the dtype's
            unit roundoff, so float64 gets more steps than float32. The backward stops at
            ``tol ** (2/3)``.
        impl: ``"torch"`` (batched products, any device and dtype), ``"triton"`` (one fused
            kernel per matrix, float32, CUDA or the Triton interpreter) or ``"auto"`` (default:
            ``"triton"`` on CUDA for float32 and ``n <=``
            :data:`~sqrtlayers.backends.minimax.FUSED_MAX_N` where Triton imports and the kernels
            fit the device, else ``"torch"``; see :func:`choose_impl`).
        precision: product precision of the fused kernel, ``"ieee"`` (default) or ``"tf32x3"``.

    Cost (``impl="torch"``): ``4 k - 3`` products forward for ``k`` steps (``4 k - 2`` for
    ``inv_sqrtm`` when a gradient is wanted) and ``7 k_b - 1`` backward for ``k_b`` steps,
    plus two for ``inv_sqrtm``'s :math:`-Z G Z`: 77 for ``sqrtm`` and 80 for ``inv_sqrtm``
    at the defaults in float32. A float16/bfloat16 input's square root takes four more (81): it
    is iterated with a ridge of the input's unit roundoff, which is then taken out again
    (:meth:`ridge_for`), so that a singular matrix, which rounding leaves slightly indefinite,
    converges.

    Numerics (float32, ``n = 64``, log-spaced spectrum, median over 8 matrices, relative
    Frobenius error forward / gradient): sqrt ~1e-6 / 4e-6 up to ``kappa = 1e3``, 4e-6 / 8e-6 at
    ``1e4``; the inverse root within 2x of float32 eigh. A rank-deficient input (covariance +
    ``eps I``) is as accurate as the condition number ``eps`` implies when that is within
    ``kappa``. ``docs/METHODS.md`` has the full table.

    Double backward is not supported (raises ``RuntimeError``).

    Example:
        >>> import torch, sqrtlayers as sl
        >>> A = torch.diag(torch.tensor([1e-4, 1.0, 4.0]))
        >>> torch.allclose(sl.sqrtm(A, backend="accurate"), A.sqrt(), atol=1e-6)
        True
    """

    name = "accurate"

    def __init__(self, kappa: float = 1e6, tol: float | None = None, impl: str = "auto", precision: str = "ieee") -> None:
        self.kappa = check_kappa(kappa)
        if tol is not None and not (isinstance(tol, float) and 0 < tol < 1):
            raise ValueError(f"tol must be a float in (0, 1) or None, got {tol!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {list(IMPLS)}, got {impl!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if impl == "triton":
            from .triton_accurate import triton_available

            # The device of a call is not known yet, but whether any device here can run the
            # kernel is: refuse now rather than at the first call.
            if not (triton_available("cuda") or triton_available("cpu")):
                raise ValueError(
                    "impl='triton' cannot run on this machine: the fused kernel needs Triton and a CUDA "
                    "device of compute capability >= 8.0 (none is available), or TRITON_INTERPRET=1 for "
                    "CPU tensors; use impl='auto' or impl='torch', which run everywhere"
                )
        self.tol = tol
        self.impl = impl
        self.precision = precision
        # Every bucket's schedule for both dtypes now, so that no call (traced or not) makes one.
        self._schedules = {
            (bucket, dtype): self._schedule(bucket, dtype)
            for bucket in SIZE_BUCKETS
            for dtype in (torch.float32, torch.float64)
        }

    def options(self) -> dict[str, object]:
        opts: dict[str, object] = {"kappa": self.kappa}
        if self.tol is not None:
            opts["tol"] = self.tol
        if self.impl != "auto":
            opts["impl"] = self.impl
        if self.precision != "ieee":
            opts["precision"] = self.precision
        return opts

    def _tol(self, dtype: torch.dtype) -> float:
        return self.tol if self.tol is not None else torch.finfo(dtype).eps / 2

    def _schedule(self, n: int, dtype: torch.dtype) -> MinimaxSchedule:
        return cached_schedule(sigma_min_for(self.kappa, n), self._tol(dtype))

    def schedule_for(self, n: int, dtype: torch.dtype) -> MinimaxSchedule:
        """The schedule used for ``n x n`` matrices of ``dtype`` (one per size bucket and dtype)."""
        bucket = size_bucket(n)
        if (bucket, dtype) in self._schedules:
            return self._schedules[bucket, dtype]
        return self._schedule(bucket, dtype)

    def steps_for(self, n: int, dtype: torch.dtype) -> tuple[Quintic, ...]:
        """The forward's per-step quintics for ``n x n`` matrices of ``dtype``."""
        return self.schedule_for(n, dtype).steps

    def backward_steps_for(self, n: int, dtype: torch.dtype) -> int:
        """How many of those steps the backward takes (its tolerance is ``tol ** (2/3)``)."""
        return self.schedule_for(n, dtype).steps_to(backward_tol(self._tol(dtype)))

    def resolved_impl(self, A: Tensor, *, inverse: bool = False, ridged: bool = False) -> str:
        """``"torch"`` or ``"triton"``: what this backend runs for inputs like ``A`` (see
        :func:`choose_impl`, which raises for ``impl="triton"`` where the kernel cannot launch).

        Under ``torch.compile``, ``impl="auto"`` runs the batched products, which the compiler
        can trace, fuse and capture; the fused kernel is an opaque launch to it.
        """
        if self.impl == "torch" or (self.impl == "auto" and torch.compiler.is_compiling()):
            return "torch"
        from .triton_accurate import device_limits, triton_available

        return choose_impl(
            self.impl, A.device.type, A.shape[-1], A.dtype, triton_available(A.device),
            inverse=inverse, precision=self.precision, ridged=ridged, device_limits=device_limits(A.device),
        )

    @staticmethod
    def ridge_for(input_dtype: torch.dtype, inverse: bool) -> float:
        """The ridge (relative to the scaled matrix, see :func:`coupled_minimax_sqrtm`) for a
        square root of an input of ``input_dtype``: its unit roundoff when that is coarser than
        the computing dtype's (float16, bfloat16), else 0.

        Rounding a singular PSD matrix to float16 (bfloat16) leaves eigenvalues down to about
        ``-1e-4`` (``-7e-4``) of the largest at ``n = 160``; the iteration itself tolerates
        ``-1e-7``, which covers float32 and float64 rounding. The inverse root of such a matrix
        does not exist, and gets no ridge.

        Example:
            >>> AccurateBackend.ridge_for(torch.bfloat16, inverse=False)
            0.00390625
            >>> AccurateBackend.ridge_for(torch.float32, inverse=False)
            0.0
        """
        if inverse or compute_dtype(input_dtype) == input_dtype:
            return 0.0
        return torch.finfo(input_dtype).eps / 2

    def _compute(self, A: Tensor, inverse: bool) -> Tensor:
        return self._compute_from(A, inverse, A.dtype)

    def _compute_from(self, A: Tensor, inverse: bool, input_dtype: torch.dtype) -> Tensor:
        n = A.shape[-1]
        schedule = self.schedule_for(n, A.dtype)
        ridge = self.ridge_for(input_dtype, inverse)
        if self.resolved_impl(A, inverse=inverse, ridged=ridge > 0) == "triton":
            from .triton_accurate import fused_minimax_sqrtm

            backward_steps = self.backward_steps_for(n, A.dtype)
            return fused_minimax_sqrtm(
                A, schedule.steps, inverse, precision=self.precision, backward_steps=backward_steps, ridge=ridge
            )
        needs_grad = torch.is_grad_enabled() and A.requires_grad
        backward_steps = self.backward_steps_for(n, A.dtype) if needs_grad else 0
        return _MinimaxSqrtm.apply(A, schedule.steps, backward_steps, inverse, ridge)[0]
