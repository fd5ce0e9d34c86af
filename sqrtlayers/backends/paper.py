"""The defaults of the paper the project implements ("Fast Differentiable Matrix Square Root",
Song et al., ICLR 2022; ``docs/METHODS.md``), written once: the backends' signatures, their
registered factories and the declared bounds read them from here, so the paper's names with their
defaults reproduce the paper's method."""

from __future__ import annotations

__all__ = ["PAPER_NS_ITERS", "PAPER_MTP_DEGREE", "PAPER_MPA_DEGREE", "PAPER_LYA_ITERS"]

#: Coupled Newton-Schulz steps of ``ns`` (iSQRT-COV's 5).
PAPER_NS_ITERS = 5
#: Degree of the Taylor polynomial of ``mtp``.
PAPER_MTP_DEGREE = 10
#: ``(m, n)`` of the Padé approximant of ``mpa``.
PAPER_MPA_DEGREE = (5, 5)
#: Sign-iteration steps of the Lyapunov backward of the ``-lya`` backends.
PAPER_LYA_ITERS = 8
