"""Name -> backend factory registry: ``list_backends``, ``get_backend``, ``register_backend``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .base import SqrtmBackend

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_POOLING_BACKEND",
    "register_backend",
    "unregister_backend",
    "get_backend",
    "list_backends",
    "resolve_backend",
    "BackendFactory",
]

BackendFactory = Callable[..., SqrtmBackend]

#: Default backend of the functional API and the whitening layers: the paper's method.
DEFAULT_BACKEND = "mpa-lya"
#: Default backend of the covariance-pooling layers: Newton-Schulz, as in iSQRT-COV.
DEFAULT_POOLING_BACKEND = "ns"

_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Register ``factory(**options) -> SqrtmBackend`` under ``name``.

    Raises:
        ValueError: if ``name`` is already registered or empty.
        TypeError: if ``factory`` is not callable.

    Example:
        >>> import sqrtlayers as sl
        >>> sl.register_backend("ns-20", lambda: sl.get_backend("ns", iters=20))
        >>> "ns-20" in sl.list_backends()
        True
        >>> sl.unregister_backend("ns-20")
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"backend name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if name in _REGISTRY:
        raise ValueError(f"a backend named {name!r} is already registered")
    _REGISTRY[name] = factory


def unregister_backend(name: str) -> None:
    """Remove a registered backend (mostly for tests and notebooks)."""
    if name not in _REGISTRY:
        raise ValueError(f"no backend named {name!r}; registered: {list_backends()}")
    del _REGISTRY[name]


def list_backends() -> list[str]:
    """Registered backend names, sorted."""
    return sorted(_REGISTRY)


def get_backend(name: str, **options: object) -> SqrtmBackend:
    """Build the backend registered as ``name`` with ``options`` (the backend's own defaults
    for the rest).

    Raises:
        ValueError: for an unknown name (the message lists the registered ones) or a bad option.
        TypeError: for an option the backend does not take (the message names it and lists
            the accepted ones, read from the factory's signature).

    Example:
        >>> import sqrtlayers as sl
        >>> sl.get_backend("mpa-lya", degree=(5, 5), lya_iters=8)
        PadeBackend(name='mpa-lya', degree=(5, 5), lya_iters=8)
    """
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown backend {name!r}; choose one of {list_backends()}") from None
    _check_options(name, factory, options)
    backend = factory(**options)
    if not isinstance(backend, SqrtmBackend):
        raise TypeError(f"the factory of {name!r} returned {type(backend).__name__}, not a SqrtmBackend")
    backend.name = name  # the registered name, also for a factory that wraps another backend
    return backend


def accepted_options(factory: BackendFactory) -> list[str] | None:
    """The keyword options ``factory`` takes, from its signature; ``None`` when it takes any."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def _check_options(name: str, factory: BackendFactory, options: dict[str, object]) -> None:
    accepted = accepted_options(factory)
    if accepted is None:
        return
    unknown = [key for key in options if key not in accepted]
    if unknown:
        given = ", ".join(f"{key}={options[key]!r}" for key in unknown)
        takes = f"it accepts {accepted}" if accepted else "it takes no options"
        raise TypeError(f"backend {name!r} got unexpected option(s) {given}; {takes}")


def resolve_backend(backend: str | SqrtmBackend) -> SqrtmBackend:
    """A backend object from a registered name or an already configured backend."""
    if isinstance(backend, SqrtmBackend):
        return backend
    if isinstance(backend, str):
        return get_backend(backend)
    raise TypeError(
        f"backend must be a registered name or a SqrtmBackend, got {type(backend).__name__}: {backend!r}"
    )
