"""Square-root backends: a forward method paired with a backward method, by registered name.

Built-in names (``FORWARD-BACKWARD``, or ``FORWARD`` when autograd differentiates the forward):

============  ======================================================  ==============================
name          forward                                                 backward
============  ======================================================  ==============================
``eigh``      eigendecomposition (exact); ``svd`` is an alias          closed form in the eigenbasis
``ns``        coupled Newton-Schulz, trace scaling (``iters=5``)       autograd
``ns-lya``    same                                                    Lyapunov sign iteration (8)
``mtp``       Taylor polynomial, Frobenius scaling (``degree=10``)     autograd
``mtp-lya``   same                                                    Lyapunov sign iteration (8)
``mpa``       Padé approximant, Frobenius scaling (``degree=(5,5)``)   autograd
``mpa-lya``   same                                                    Lyapunov sign iteration (8)
``accurate``  coupled iteration, minimax quintics (``kappa=1e6``)       accelerated Lyapunov sign iter.
``auto``      the fastest of the above meeting ``tol=1e-3`` up to ``kappa=1e4`` on this device
============  ======================================================  ==============================
"""

from __future__ import annotations

from .accurate import AccurateBackend
from .auto import AutoBackend
from .base import SqrtmBackend
from .eigh import EighBackend
from .newton_schulz import NewtonSchulzBackend
from .pade import PadeBackend
from .paper import PAPER_LYA_ITERS, PAPER_MPA_DEGREE, PAPER_MTP_DEGREE, PAPER_NS_ITERS
from .registry import DEFAULT_BACKEND, DEFAULT_POOLING_BACKEND, get_backend, list_backends, register_backend, resolve_backend, unregister_backend
from .taylor import TaylorBackend

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_POOLING_BACKEND",
    "SqrtmBackend",
    "AccurateBackend",
    "AutoBackend",
    "EighBackend",
    "NewtonSchulzBackend",
    "TaylorBackend",
    "PadeBackend",
    "get_backend",
    "list_backends",
    "register_backend",
    "unregister_backend",
    "resolve_backend",
]

def _ns(iters: int = PAPER_NS_ITERS) -> SqrtmBackend:
    return NewtonSchulzBackend(iters)


def _ns_lya(iters: int = PAPER_NS_ITERS, lya_iters: int = PAPER_LYA_ITERS) -> SqrtmBackend:
    return NewtonSchulzBackend(iters, lya_iters=lya_iters)


def _mtp(degree: int = PAPER_MTP_DEGREE) -> SqrtmBackend:
    return TaylorBackend(degree)


def _mtp_lya(degree: int = PAPER_MTP_DEGREE, lya_iters: int = PAPER_LYA_ITERS) -> SqrtmBackend:
    return TaylorBackend(degree, lya_iters=lya_iters)


def _mpa(degree: tuple[int, int] = PAPER_MPA_DEGREE, solver: str = "lu") -> SqrtmBackend:
    return PadeBackend(degree, solver=solver)


def _mpa_lya(degree: tuple[int, int] = PAPER_MPA_DEGREE, lya_iters: int = PAPER_LYA_ITERS, solver: str = "lu") -> SqrtmBackend:
    return PadeBackend(degree, lya_iters=lya_iters, solver=solver)


for _name, _factory in {
    "accurate": AccurateBackend,
    "auto": AutoBackend,
    "eigh": EighBackend,
    "svd": EighBackend,
    "ns": _ns,
    "ns-lya": _ns_lya,
    "mtp": _mtp,
    "mtp-lya": _mtp_lya,
    "mpa": _mpa,
    "mpa-lya": _mpa_lya,
}.items():
    register_backend(_name, _factory)
