"""Scalar series of (1 - z)^{±1/2} and their evaluation at a matrix argument."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import torch
from torch import Tensor

from .fused import scaled_matmul_add

__all__ = ["binomial_series", "pade_coefficients", "matrix_polynomial"]


def binomial_series(power: Fraction, degree: int) -> tuple[Fraction, ...]:
    """Taylor coefficients ``c_0..c_degree`` of ``(1 - z)^power`` about ``z = 0``, exactly."""
    coeffs = [Fraction(1)]
    for k in range(1, degree + 1):
        # c_k = c_{k-1} * (k - 1 - power) / k, from binom(power, k) (-1)^k
        coeffs.append(coeffs[-1] * (k - 1 - power) / k)
    return tuple(coeffs)


def pade_coefficients(power: Fraction, m: int, n: int) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...]]:
    """Numerator ``p_0..p_m`` and denominator ``q_0..q_n`` (``q_0 = 1``) of the ``[m/n]`` Padé
    approximant of ``(1 - z)^power``, exactly, by matching the Taylor series to order ``m + n``.
    """
    t = binomial_series(power, m + n)
    # sum_j q_j t_{k-j} = 0 for k = m+1..m+n, unknowns q_1..q_n (q_0 = 1): Gauss-Jordan on Fractions.
    rows = [[t[k - j] if k - j >= 0 else Fraction(0) for j in range(1, n + 1)] + [-t[k]] for k in range(m + 1, m + n + 1)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    q = [Fraction(1)] + [rows[i][n] / rows[i][i] for i in range(n)]
    p = [sum((q[j] * t[k - j] for j in range(min(k, n) + 1)), Fraction(0)) for k in range(m + 1)]
    return tuple(p), tuple(q)


def matrix_polynomial(Z: Tensor, coeffs: Sequence[float]) -> Tensor:
    """``sum_k coeffs[k] Z^k`` (at least two coefficients) by Horner's rule: ``len(coeffs) - 2``
    fused products."""
    eye = torch.eye(Z.shape[-1], dtype=Z.dtype, device=Z.device)
    P = coeffs[-1] * Z + coeffs[-2] * eye
    for c in reversed(coeffs[:-2]):
        P = scaled_matmul_add(c * eye, P, Z, beta=1.0, alpha=1.0)
    return P
