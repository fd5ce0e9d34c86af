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
from .registry import get_backend, list_backends, register_backend, resolve_backend, unregister_backend
from .taylor import TaylorBackend

__all__ = [
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

#: The paper's number of sign-iteration steps in the Lyapunov backward.
PAPER_LYA_ITERS = 8


def _named(backend: SqrtmBackend, name: str) -> SqrtmBackend:
    backend.name = name
    return backend


def _eigh() -> SqrtmBackend:
    return _named(EighBackend(), "eigh")


def _svd() -> SqrtmBackend:
    return _named(EighBackend(), "svd")


def _ns(iters: int = 5) -> SqrtmBackend:
    return _named(NewtonSchulzBackend(iters), "ns")


def _ns_lya(iters: int = 5, lya_iters: int = PAPER_LYA_ITERS) -> SqrtmBackend:
    return _named(NewtonSchulzBackend(iters, lya_iters=lya_iters), "ns-lya")


def _mtp(degree: int = 10) -> SqrtmBackend:
    return _named(TaylorBackend(degree), "mtp")


def _mtp_lya(degree: int = 10, lya_iters: int = PAPER_LYA_ITERS) -> SqrtmBackend:
    return _named(TaylorBackend(degree, lya_iters=lya_iters), "mtp-lya")


def _mpa(degree: tuple[int, int] = (5, 5), solver: str = "lu") -> SqrtmBackend:
    return _named(PadeBackend(degree, solver=solver), "mpa")


def _mpa_lya(degree: tuple[int, int] = (5, 5), lya_iters: int = PAPER_LYA_ITERS, solver: str = "lu") -> SqrtmBackend:
    return _named(PadeBackend(degree, lya_iters=lya_iters, solver=solver), "mpa-lya")


def _accurate(kappa: float = 1e6, tol: float | None = None) -> SqrtmBackend:
    return _named(AccurateBackend(kappa, tol), "accurate")


def _auto(tol: float = 1e-3, kappa: float = 1e4) -> SqrtmBackend:
    return _named(AutoBackend(tol, kappa), "auto")


for _name, _factory in {
    "accurate": _accurate,
    "auto": _auto,
    "eigh": _eigh,
    "svd": _svd,
    "ns": _ns,
    "ns-lya": _ns_lya,
    "mtp": _mtp,
    "mtp-lya": _mtp_lya,
    "mpa": _mpa,
    "mpa-lya": _mpa_lya,
}.items():
    register_backend(_name, _factory)
