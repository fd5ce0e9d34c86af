r"""The accuracy each backend promises: one declaration per backend, in one place.

A bound is on the relative Frobenius error against the float64 exact result of the input the
backend received (after rounding to its dtype), per matrix: forward
:math:`\|Y - A^{\pm 1/2}\|_F / \|A^{\pm 1/2}\|_F`, and gradient of :math:`L = \langle Y, G\rangle`
for a symmetric :math:`G`. It depends on the condition number :math:`\kappa` of the float64
matrix, in bands :math:`\kappa \le 10^2`, :math:`\le 10^4`, :math:`\le 10^6` and singular PSD
(square root only, forward only: the gradient of the root is unbounded at a zero eigenvalue),
and on the dtype: float16/bfloat16 inputs are computed in float32 and rounded, so their bound is
the float32 one plus the unit roundoff ``u`` of the output type; for the square root of
``accurate``, which iterates on such inputs with a ridge of ``u`` and then takes it out, plus
``min((u kappa)^2, 3 sqrt(u))``, and ``3 sqrt(u)`` in the singular band: rounding makes the zero
eigenvalues about ``±0.1 u``, and a polynomial in the ridged root cannot follow
``sqrt(max(lambda, 0))`` that closely to zero (measured worst at ``n = 160``, rank 1: ``1.0
sqrt(u)`` for both dtypes).

How the numbers were set: the worst error over ``n`` in {1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 31, 33,
64, 65, 100, 127, 160}, two seeds each, of log-spaced, clustered and exactly repeated spectra at
the band's largest ``kappa`` (rank-deficient and rank-one ones for the PSD band), overall scales up to
``1e13.5`` (float32) and ``1e27`` (float64) either way, with the generator of
``tests/sqrtlayers/backends/test_properties.py``. Declared: that worst case times 3 for the
methods whose error is rounding (``eigh``, ``accurate``), times 1.5 for the paper's methods, whose
error is the truncation of a fixed approximation and changes smoothly with ``n`` and the
spectrum; rounded up to one digit, and never below the band before it. The bounds therefore
cover ``n <= 160``. Float64 ``eigh`` is its own reference, so its bound is the float32 one scaled
by the ratio of the unit roundoffs. ``accurate``'s float32 gradient bounds came from
``n >= 8``, where its gradient was then accurate; ``n <= 5`` has been since its backward runs
on a shrunk root, and is held to the same bounds.

Where a bound is near or above 1 the method has no accuracy there, and that is the documented
limit, not a bug: the paper's methods (``ns``, ``mtp``, ``mpa`` and their ``-lya`` forms) keep
their published fixed step counts and degrees, which converge only for eigenvalues near the top
of the normalised spectrum; the inverse root suffers most.

A backend object is matched to a declaration by its class and options, so a backend registered
under a new name (``register_backend("my-ns", lambda: get_backend("ns"))``) gets the bounds
of the configuration it is, and one configured differently (``iters=20``) or of a new class has
none: :func:`declared_bound` returns ``None`` ("undeclared"), and the property tests then check
everything but accuracy. There is deliberately no default bound: a guess would either fail a
good backend or pass a bad one.

Run ``python -m sqrtlayers.backends.bounds`` to print the README's accuracy table.

Example:
    >>> import torch
    >>> from sqrtlayers.backends.bounds import declared_bound
    >>> declared_bound("accurate", inverse=False, dtype=torch.float32, kappa=1e3).forward <= 1e-3
    True
    >>> import sqrtlayers as sl
    >>> declared_bound(sl.get_backend("ns", iters=20), inverse=False, dtype=torch.float32, kappa=10.0) is None
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import SqrtmBackend
from .minimax import check_kappa
from .registry import get_backend

__all__ = ["KAPPA_BANDS", "AccuracyBound", "Declaration", "DECLARATIONS", "declaration_for", "declared_bound", "markdown_table"]

#: Upper ends of the condition-number bands; ``inf`` is the singular PSD band (square root only).
KAPPA_BANDS: tuple[float, ...] = (1e2, 1e4, 1e6, math.inf)

_ROOTS = ("sqrtm", "inv_sqrtm")
# Computed in float32 and rounded to these: the rounding adds at most their unit roundoff.
_ROUNDED = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class AccuracyBound:
    """Relative Frobenius error bounds; ``gradient`` is ``inf`` where none is promised."""

    forward: float
    gradient: float


# (forward, gradient) per KAPPA_BANDS; ``None`` gradient: not bounded (PSD band).
_Row = tuple[tuple[float, float | None] | None, ...]


@dataclass(frozen=True)
class Declaration:
    """The bounds of one backend configuration, per root (``"sqrtm"``/``"inv_sqrtm"``) and
    computing dtype (float32/float64)."""

    name: str
    config: SqrtmBackend
    rows: dict[tuple[str, torch.dtype], _Row]
    #: Why the bounds are what they are, where that is not obvious.
    note: str = ""
    #: Whether the backend shifts float16/bfloat16 inputs by a ridge of their unit roundoff
    #: (``accurate``: see :meth:`~sqrtlayers.backends.accurate.AccurateBackend.ridge_for`).
    ridged: bool = False

    def matches(self, backend: SqrtmBackend) -> bool:
        return type(backend) is type(self.config) and backend.options() == self.config.options()

    def bound(self, root: str, dtype: torch.dtype, kappa: float) -> AccuracyBound | None:
        """The bound for ``kappa`` (``inf``: singular PSD), or ``None`` beyond ``1e6`` and short
        of singular, where nothing was measured."""
        if KAPPA_BANDS[-2] < kappa < math.inf:
            return None
        band = next(i for i, top in enumerate(KAPPA_BANDS) if kappa <= top)
        cell = self.rows[root, dtype][band]
        if cell is None:
            return None
        forward, gradient = cell
        return AccuracyBound(forward, math.inf if gradient is None else gradient)


_F32, _F64 = torch.float32, torch.float64
_PAPER_NOTE = "the paper's fixed step count: no accuracy at large kappa or large n (documented limit)"

_EIGH_ROWS: dict[tuple[str, torch.dtype], _Row] = {
    ("sqrtm", _F32): ((7e-6, 4e-5), (6e-5, 5e-3), (6e-4, 5e-1), (2e-3, None)),
    ("sqrtm", _F64): ((2e-14, 8e-14), (2e-13, 8e-12), (1e-12, 1e-9), (4e-12, None)),
    ("inv_sqrtm", _F32): ((6e-5, 2e-4), (6e-3, 2e-2), (7e-1, 3), None),
    ("inv_sqrtm", _F64): ((2e-13, 3e-13), (2e-11, 3e-11), (2e-9, 4e-9), None),
}
_ACCURATE_ROWS: dict[tuple[str, torch.dtype], _Row] = {
    ("sqrtm", _F32): ((2e-5, 5e-5), (2e-4, 6e-4), (4e-4, 6e-2), (4e-3, None)),
    ("sqrtm", _F64): ((4e-14, 2e-13), (4e-13, 2e-11), (2e-12, 2e-9), (6e-8, None)),
    ("inv_sqrtm", _F32): ((3e-5, 6e-5), (8e-4, 2e-3), (8e-2, 2e-1), None),
    ("inv_sqrtm", _F64): ((1e-13, 3e-13), (2e-11, 4e-11), (2e-9, 4e-9), None),
}
_ACCURATE_1E4_ROWS: dict[tuple[str, torch.dtype], _Row] = {
    ("sqrtm", _F32): ((6e-6, 9e-6), (3e-5, 6e-4), (2e-3, 2), (2e-3, None)),
    ("sqrtm", _F64): ((2e-14, 3e-13), (2e-13, 2e-11), (9e-4, 2), (4e-4, None)),
    ("inv_sqrtm", _F32): ((1e-5, 3e-5), (8e-4, 2e-3), (2, 3), None),
    ("inv_sqrtm", _F64): ((9e-14, 4e-13), (2e-11, 4e-11), (9e-1, 3), None),
}


# The paper's methods: truncation error of a fixed approximation, the same in float32 and float64.
_NS_SQRTM: _Row = ((6e-1, 2), (6e-1, 2), (6e-1, 2), (3e-1, None))
_NS_INV: _Row = ((2, 2), (2, 2), (2, 2), None)
_MTP_SQRTM: _Row = ((7e-1, 2), (1, 2), (2, 2), (4, None))
_MTP_INV: _Row = ((2, 2), (2, 2), (2, 2), None)
_MPA_SQRTM: _Row = ((3e-1, 2), (5e-1, 2), (6e-1, 2), (2, None))
_MPA_LYA_SQRTM: _Row = ((3e-1, 1), (5e-1, 2), (6e-1, 2), (2, None))
_MPA_INV: _Row = ((1, 2), (2, 2), (2, 2), None)


def _paper_rows(sqrtm: _Row, inv_sqrtm: _Row) -> dict[tuple[str, torch.dtype], _Row]:
    return {(root, dtype): row for root, row in (("sqrtm", sqrtm), ("inv_sqrtm", inv_sqrtm)) for dtype in (_F32, _F64)}


def _worst_of(*tables: dict[tuple[str, torch.dtype], _Row]) -> dict[tuple[str, torch.dtype], _Row]:
    """Cell-wise maximum: the bounds of a backend that may run any of these."""
    merged: dict[tuple[str, torch.dtype], _Row] = {}
    for key in tables[0]:
        row = []
        for cells in zip(*(table[key] for table in tables)):
            if any(cell is None for cell in cells):
                row.append(None)
                continue
            gradients = [cell[1] for cell in cells]
            row.append((max(cell[0] for cell in cells), None if None in gradients else max(gradients)))
        merged[key] = tuple(row)
    return merged


#: Every declaration; ``svd`` has none of its own: it is ``eigh`` (same class and options).
DECLARATIONS: tuple[Declaration, ...] = (
    Declaration("eigh", get_backend("eigh"), _EIGH_ROWS, "LAPACK eigh: error grows as kappa * eps"),
    Declaration("accurate", get_backend("accurate"), _ACCURATE_ROWS, "converges up to its kappa=1e6", ridged=True),
    Declaration(
        "accurate(kappa=1e4)",
        get_backend("accurate", kappa=1e4),
        _ACCURATE_1E4_ROWS,
        "not converged beyond kappa=1e4",
        ridged=True,
    ),
    Declaration(
        "auto",
        get_backend("auto"),
        _worst_of(_EIGH_ROWS, _ACCURATE_1E4_ROWS),
        "eigh or accurate(kappa=1e4), whichever it picks for the device and size",
        ridged=True,
    ),
    # The paper's names at the paper's defaults (sqrtlayers.backends.paper).
    Declaration("ns", get_backend("ns"), _paper_rows(_NS_SQRTM, _NS_INV), _PAPER_NOTE),
    Declaration("ns-lya", get_backend("ns-lya"), _paper_rows(_NS_SQRTM, _NS_INV), _PAPER_NOTE),
    Declaration("mtp", get_backend("mtp"), _paper_rows(_MTP_SQRTM, _MTP_INV), _PAPER_NOTE),
    Declaration("mtp-lya", get_backend("mtp-lya"), _paper_rows(_MTP_SQRTM, _MTP_INV), _PAPER_NOTE),
    Declaration("mpa", get_backend("mpa"), _paper_rows(_MPA_SQRTM, _MPA_INV), _PAPER_NOTE),
    Declaration("mpa-lya", get_backend("mpa-lya"), _paper_rows(_MPA_LYA_SQRTM, _MPA_INV), _PAPER_NOTE),
)


def declaration_for(backend: str | SqrtmBackend) -> Declaration | None:
    """The declaration whose configuration ``backend`` is (a registered name or a backend
    object, matched by class and options), or ``None`` if it has none."""
    if isinstance(backend, str):
        backend = get_backend(backend)
    return next((d for d in DECLARATIONS if d.matches(backend)), None)


def declared_bound(
    backend: str | SqrtmBackend, *, inverse: bool, dtype: torch.dtype, kappa: float
) -> AccuracyBound | None:
    """The declared error bound of ``backend`` for inputs of ``dtype`` and condition number
    ``kappa`` (``inf`` for a singular PSD matrix), or ``None`` where nothing is declared (an
    undeclared backend, or the inverse root of a singular matrix).

    Raises:
        ValueError: if ``kappa < 1`` or ``dtype`` is not a floating-point dtype.
    """
    kappa = check_kappa(kappa, singular_ok=True)
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    declaration = declaration_for(backend)
    if declaration is None:
        return None
    bound = declaration.bound("inv_sqrtm" if inverse else "sqrtm", _F32 if dtype in _ROUNDED else dtype, kappa)
    if bound is None or dtype not in _ROUNDED:
        return bound
    rounding = torch.finfo(dtype).eps / 2
    extra = rounding
    if declaration.ridged and not inverse:
        # Taking the ridge rho = u out again leaves about (5/16) (rho kappa)^3 on the smallest
        # eigenvalue's root, more in its gradient: (u kappa)^2 covers both where the matrix is
        # definite, and 3 sqrt(u) the roots near zero (see the module docstring).
        singular = 3 * math.sqrt(rounding)
        extra += singular if math.isinf(kappa) else min((rounding * kappa) ** 2, singular)
    return AccuracyBound(bound.forward + extra, bound.gradient + extra)


def _format(value: float) -> str:
    """``3e-5``, ``0.5``, ``3``: one significant digit, as the bounds are declared."""
    if 0.1 <= value < 100:
        return f"{value:g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def markdown_table(dtype: torch.dtype = _F32) -> str:
    """The README's accuracy table: declared forward / gradient bounds per backend and root for
    the finite bands, generated from :data:`DECLARATIONS`."""
    bands = [kappa for kappa in KAPPA_BANDS if math.isfinite(kappa)]
    lines = [
        "| backend | root | " + " | ".join(f"κ ≤ {kappa:.0e}".replace("e+0", "e") for kappa in bands) + " |",
        "| --- | --- |" + " --- |" * len(bands),
    ]
    for declaration in DECLARATIONS:
        for root in _ROOTS:
            cells = []
            for kappa in bands:
                bound = declaration.bound(root, dtype, kappa)
                assert bound is not None  # every declaration covers the finite bands
                cells.append(f"{_format(bound.forward)} / {_format(bound.gradient)}")
            lines.append(f"| `{declaration.name}` | `{root}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
