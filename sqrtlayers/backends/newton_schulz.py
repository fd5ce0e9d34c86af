"""Coupled Newton-Schulz iteration with trace pre-normalisation (iSQRT-COV)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import check_positive_int
from .iterative import IterativeBackend
from .fused import scaled_matmul_add
from .normalisation import trace_normalise
from .paper import PAPER_NS_ITERS

__all__ = ["newton_schulz_sqrtm", "NewtonSchulzBackend"]


def newton_schulz_sqrtm(A: Tensor, iters: int) -> tuple[Tensor, Tensor]:
    r"""``(A^{1/2}, A^{-1/2})`` by ``iters`` coupled Newton-Schulz steps after trace scaling.

    With :math:`A_n = A / \operatorname{tr} A`, :math:`Y_0 = A_n`, :math:`Z_0 = I`:
    :math:`T = (3I - Z_k Y_k)/2`, :math:`Y_{k+1} = Y_k T`, :math:`Z_{k+1} = T Z_k`; then
    :math:`A^{1/2} \approx \sqrt{\operatorname{tr} A}\, Y`, :math:`A^{-1/2} \approx Z / \sqrt{\operatorname{tr} A}`.
    """
    A_n, trace = trace_normalise(A)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    # The first step has Z_0 = I, so T_0 = (3I - A_n)/2 needs no product.
    T = 1.5 * eye - 0.5 * A_n
    Y, Z = A_n @ T, T
    for _ in range(iters - 1):
        T = scaled_matmul_add(eye, Z, Y, beta=1.5, alpha=-0.5)
        Y, Z = Y @ T, T @ Z
    root_trace = trace.sqrt()
    return Y * root_trace, Z / root_trace


class NewtonSchulzBackend(IterativeBackend):
    r"""Coupled Newton-Schulz iteration, the iSQRT-COV square root (Li et al., CVPR 2018).

    Computes :math:`A^{1/2}` and :math:`A^{-1/2}` together; see :func:`newton_schulz_sqrtm`.
    ``ns`` differentiates through the iterations by autograd (double backward works); ``ns-lya``
    uses the Lyapunov sign-iteration backward.

    Args:
        iters: Newton-Schulz steps. Default: :data:`~sqrtlayers.backends.paper.PAPER_NS_ITERS`.
        lya_iters: sign-iteration steps of the Lyapunov backward, or ``None`` for autograd.

    Numerics: trace scaling puts the largest eigenvalue of ``A_n`` at most at 1 and often far
    below it (about ``1/n`` for a flat spectrum), and an eigenvalue ``mu`` grows only ~1.5x per
    step while small, so 5 steps leave errors of order ``1e-1`` for ``n = 64`` (docs/METHODS.md, "Anchors").

    Example:
        >>> import torch, sqrtlayers as sl
        >>> A = torch.eye(4) * 9
        >>> (sl.sqrtm(A, backend=sl.get_backend("ns", iters=20)) - 3 * torch.eye(4)).abs().max() < 1e-4
        tensor(True)
    """

    name = "ns"

    def __init__(self, iters: int = PAPER_NS_ITERS, *, lya_iters: int | None = None) -> None:
        super().__init__(lya_iters=lya_iters)
        self.iters = check_positive_int(iters, "iters")

    def options(self) -> dict[str, object]:
        return {"iters": self.iters, **super().options()}

    def forward_method(self, A: Tensor, root: bool, inverse: bool) -> tuple[Tensor | None, Tensor | None]:
        return newton_schulz_sqrtm(A, self.iters)
