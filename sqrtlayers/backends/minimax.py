r"""The ``accurate`` method's rules that need no tensors: per-step minimax quintics, their
schedules, and the limits both of its implementations keep.

:mod:`sqrtlayers.backends.accurate` (batched products) and
:mod:`sqrtlayers.backends.triton_accurate` (one fused kernel per matrix) both import this module
and nothing of each other's but ``accurate -> triton_accurate``; every rule they share is written
here once: the schedules, the shrink of the backward's root, the largest fused size, the product
precisions and implementations accepted, the dtype the fused kernel computes in, and how
``kappa`` is checked. The method is described in ``docs/METHODS.md`` (section "accurate").

One step of the coupled iteration maps an eigenvalue :math:`x = \sigma^2` of the scaled matrix by
:math:`\sigma \mapsto q_k(\sigma) = a_k\sigma + b_k\sigma^3 + c_k\sigma^5`; each :math:`q_k` is the
minimax (Remez) approximation of 1 on the interval the previous steps leave. Once that interval is
within ``1e-3`` of 1 the minimax quintic is Newton-Schulz's to working precision (and the Remez
system degenerates), so the schedule finishes with Newton-Schulz steps, whose error map
:math:`x \mapsto x^3 (20 + 15x + 3x^2)/8` (:math:`\sigma = 1 + x`) is tracked exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = [
    "Quintic",
    "NEWTON_SCHULZ_QUINTIC",
    "BACKWARD_SHRINK",
    "FUSED_MAX_N",
    "FUSED_DTYPE",
    "IMPLS",
    "PRECISIONS",
    "SIZE_BUCKETS",
    "MinimaxSchedule",
    "minimax_odd_quintic",
    "minimax_schedule",
    "cached_schedule",
    "sigma_min_for",
    "size_bucket",
    "backward_tol",
    "check_kappa",
    "check_fused_dtype",
]

#: Coefficients ``(a, b, c)`` of :math:`q(\sigma) = a\sigma + b\sigma^3 + c\sigma^5`.
Quintic = tuple[float, float, float]

#: Newton-Schulz's quintic: the limit of the minimax quintic as the interval shrinks to 1.
NEWTON_SCHULZ_QUINTIC: Quintic = (15 / 8, -10 / 8, 3 / 8)

#: The backward's sign iteration runs on ``BACKWARD_SHRINK * B`` and rescales its result: the
#: composed quintics diverge a few ``1e-6`` above :math:`\sigma = 1`, where a computed root lands
#: when one eigenvalue dominates (``docs/METHODS.md``, "Two guards").
BACKWARD_SHRINK = 1.0 - 2.0**-10

#: Largest ``n`` of the fused kernel, which holds one matrix on chip: ``BLOCK = 128`` would need
#: 192 KiB of shared memory and spill ~90 KiB per thread (``docs/BENCHMARKS.md``, "Fused kernel
#: resources").
FUSED_MAX_N = 64

#: The one dtype the fused kernel computes in (float16/bfloat16 inputs arrive upcast to it).
FUSED_DTYPE = "float32"

#: The ``impl=`` options of ``accurate``.
IMPLS = ("auto", "torch", "triton")

#: The ``precision=`` options of the fused kernel, passed to ``tl.dot(..., input_precision=...)``.
PRECISIONS = ("ieee", "tf32x3")

# (tr A^4)^{1/4} overestimates lambda_max by n^{1/4} at most. Schedules are made for the
# looseness of the largest n in each bucket (2, 4 and 8 for n <= 16, 256, 4096), all at
# construction; larger matrices get a schedule of their own when first met.
SIZE_BUCKETS = (16, 256, 4096)

# Below this distance from 1 the schedule takes Newton-Schulz steps: the four Remez reference
# points then differ by O(width) and the 4x4 system loses all its digits as width -> eps.
_REMEZ_MIN_WIDTH = 1e-3


def check_kappa(kappa: object, *, singular_ok: bool = False) -> float:
    """``kappa`` as a float if it is a number ``>= 1`` (finite, or ``inf`` for a singular matrix
    where ``singular_ok``), else ``ValueError`` echoing it: the one check of every ``kappa``.

    Example:
        >>> check_kappa(0.5)
        Traceback (most recent call last):
        ...
        ValueError: kappa must be a finite number >= 1, got 0.5
    """
    finite = isinstance(kappa, (int, float)) and not isinstance(kappa, bool) and 1 <= kappa < math.inf
    if finite or (singular_ok and kappa == math.inf and not isinstance(kappa, bool)):
        return float(kappa)
    what = "a number >= 1 (inf: a singular matrix)" if singular_ok else "a finite number >= 1"
    raise ValueError(f"kappa must be {what}, got {kappa!r}")


def check_fused_dtype(dtype: object) -> None:
    """Raise ``TypeError`` unless ``dtype`` (a ``torch.dtype``) is :data:`FUSED_DTYPE`."""
    if str(dtype) != f"torch.{FUSED_DTYPE}":
        raise TypeError(
            f"the fused Triton kernel computes in {FUSED_DTYPE}, got dtype {dtype}; use impl='torch' (any dtype)"
        )


def sigma_min_for(kappa: float, n: int) -> float:
    """The smallest :math:`\\sigma = \\sqrt{\\lambda/u}` a schedule must converge from: the
    scaling :math:`u = (\\operatorname{tr} A^4)^{1/4}` is loose by up to :math:`n^{1/4}`."""
    return min(1.0 / math.sqrt(kappa * n**0.25), 0.5)


def size_bucket(n: int) -> int:
    """The size whose schedule ``n x n`` matrices use: the first of :data:`SIZE_BUCKETS` that
    is ``>= n``, or ``n`` itself beyond them."""
    return next((bucket for bucket in SIZE_BUCKETS if n <= bucket), n)


def backward_tol(tol: float) -> float:
    """The backward's tolerance: gradients need less than the forward's, ``tol ** (2/3)`` (one
    step fewer than the forward in float32)."""
    return tol ** (2 / 3)


def _solve4(M: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Gaussian elimination with partial pivoting for the 4x4 Remez system (float64); ``None``
    when the system is numerically singular."""
    rows = [row[:] + [r] for row, r in zip(M, rhs)]
    n = len(rows)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        if not abs(rows[col][col]) > 1e-300:
            return None
        for r in range(col + 1, n):
            f = rows[r][col] / rows[col][col]
            rows[r] = [a - f * b for a, b in zip(rows[r], rows[col])]
    x = [0.0] * n
    for r in reversed(range(n)):
        x[r] = (rows[r][n] - sum(rows[r][c] * x[c] for c in range(r + 1, n))) / rows[r][r]
    return x if all(math.isfinite(v) for v in x) else None


def minimax_odd_quintic(lo: float, hi: float, max_iter: int = 50) -> tuple[Quintic, float, float]:
    r"""Coefficients ``(a, b, c)`` of :math:`q(\sigma) = a\sigma + b\sigma^3 + c\sigma^5` that minimise
    :math:`\max_{\sigma \in [lo, hi]} |1 - q(\sigma)|`, by the Remez exchange algorithm, and the
    range ``(min q, max q)`` over ``[lo, hi]`` (the next step's interval).

    Where the Remez system is numerically singular (intervals narrower than about ``1e-5``
    around 1) the result is Newton-Schulz's quintic, which is the minimax one's limit there.

    Example:
        >>> (a, b, c), qmin, qmax = minimax_odd_quintic(0.999, 1.001)
        >>> round(a, 3), round(b, 3), round(c, 3)  # Newton-Schulz's quintic, 15/8, -10/8, 3/8
        (1.875, -1.25, 0.375)
    """
    if not 0.0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi, got lo={lo}, hi={hi}")
    ref = [lo + (hi - lo) * t for t in (0.0, 0.25, 0.75, 1.0)]
    coeffs: Quintic = NEWTON_SCHULZ_QUINTIC
    for _ in range(max_iter):
        solution = _solve4([[s, s**3, s**5, (-1.0) ** i] for i, s in enumerate(ref)], [1.0] * 4)
        if solution is None:
            break
        coeffs = (solution[0], solution[1], solution[2])
        interior = _interior_extrema(coeffs, lo, hi)
        if len(interior) != 2:
            break
        new_ref = [lo, interior[0], interior[1], hi]
        if max(abs(x - y) for x, y in zip(new_ref, ref)) <= 1e-15 * hi:
            break
        ref = new_ref
    # Keep whichever of the Remez result and Newton-Schulz's quintic is closer to 1 on [lo, hi]:
    # an exchange that stalled (or never started) must not make a step worse than the classic one.
    candidates = [(c, *_range_on(c, lo, hi)) for c in (coeffs, NEWTON_SCHULZ_QUINTIC)]
    return min(candidates, key=lambda c: max(1.0 - c[1], c[2] - 1.0))


def _interior_extrema(coeffs: Quintic, lo: float, hi: float) -> list[float]:
    """Sorted roots of ``q'(s) = a + 3b s^2 + 5c s^4`` strictly inside ``(lo, hi)``."""
    a, b, c = coeffs
    disc = 9 * b * b - 20 * a * c
    if c == 0 or disc < 0:
        return []
    squares = ((-3 * b - math.sqrt(disc)) / (10 * c), (-3 * b + math.sqrt(disc)) / (10 * c))
    return sorted(math.sqrt(r) for r in squares if r > 0 and lo < math.sqrt(r) < hi)


def _range_on(coeffs: Quintic, lo: float, hi: float) -> tuple[float, float]:
    a, b, c = coeffs
    points = [lo, hi, *_interior_extrema(coeffs, lo, hi)]
    values = [a * s + b * s**3 + c * s**5 for s in points]
    return min(values), max(values)


def _newton_schulz_deviation(x: float) -> float:
    """``q(1 + x) - 1`` for Newton-Schulz's quintic, without the cancellation of ``q - 1``."""
    return x**3 * (20 + 15 * x + 3 * x * x) / 8


class MinimaxSchedule(NamedTuple):
    """Per-step quintics and how far from 1 each step leaves the worst ``sigma``.

    ``deviations[k]`` bounds :math:`|q_k(\\dots q_0(\\sigma)) - 1|` over the starting interval.
    """

    steps: tuple[Quintic, ...]
    deviations: tuple[float, ...]

    def steps_to(self, tol: float) -> int:
        """The number of leading steps after which every ``sigma`` is within ``tol`` of 1."""
        return next((k + 1 for k, dev in enumerate(self.deviations) if dev <= tol), len(self.steps))


def minimax_schedule(sigma_min: float, tol: float, max_steps: int = 60) -> MinimaxSchedule:
    """The per-step quintics that take every ``sigma`` in ``[sigma_min, 1]`` to within ``tol`` of 1.

    Computed in float64 Python arithmetic, robustly for any ``0 < sigma_min <= 1`` and any
    ``tol > 0``: minimax (Remez) steps while the interval is wide, Newton-Schulz steps once it
    is within ``1e-3`` of 1, with the distance from 1 tracked as a deviation so that tolerances
    at float64's unit roundoff are reached exactly.

    Example:
        >>> len(minimax_schedule(1e-2, 1e-7).steps)  # kappa = 1e4 with an exact bound: 6 steps
        6
    """
    if not 0.0 < sigma_min <= 1.0:
        raise ValueError(f"sigma_min must be in (0, 1], got {sigma_min!r}")
    if not tol > 0.0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    lo_dev, hi_dev = sigma_min - 1.0, 0.0  # sigma - 1 at the two ends of the interval
    steps: list[Quintic] = []
    deviations: list[float] = []
    while max(-lo_dev, hi_dev) > tol:
        if len(steps) == max_steps:
            raise RuntimeError(f"minimax schedule did not reach tol={tol} in {max_steps} steps from sigma_min={sigma_min}")
        if max(-lo_dev, hi_dev) > _REMEZ_MIN_WIDTH:
            coeffs, q_lo, q_hi = minimax_odd_quintic(1.0 + lo_dev, 1.0 + hi_dev)
            lo_dev, hi_dev = q_lo - 1.0, q_hi - 1.0
        else:
            # q is increasing (q' = 15 (1 - s^2)^2 / 8 >= 0), so the ends map to the ends.
            coeffs = NEWTON_SCHULZ_QUINTIC
            lo_dev, hi_dev = _newton_schulz_deviation(lo_dev), _newton_schulz_deviation(hi_dev)
        steps.append(coeffs)
        deviations.append(max(-lo_dev, hi_dev))
    return MinimaxSchedule(tuple(steps), tuple(deviations))


# Schedules are pure functions of (sigma_min, tol): computed once per process, at backend
# construction, never inside a traced call.
_SCHEDULES: dict[tuple[float, float], MinimaxSchedule] = {}


def cached_schedule(sigma_min: float, tol: float) -> MinimaxSchedule:
    """:func:`minimax_schedule`, computed once per ``(sigma_min, tol)`` in a process."""
    key = (sigma_min, tol)
    if key not in _SCHEDULES:
        _SCHEDULES[key] = minimax_schedule(sigma_min, tol)
    return _SCHEDULES[key]
