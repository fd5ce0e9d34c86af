"""The paper's names with the paper's defaults reproduce the numbers measured for them (docs/METHODS.md, "Anchors").

Protocol (the same as the table): float32, n = 64, eigenvalues log-spaced from 1 to 1/kappa,
random orthogonal eigenvectors, relative Frobenius error against float64, gradient of
``<root, G>`` for a random symmetric ``G``; here the median over 4 matrices.
"""

from __future__ import annotations

import pytest
import torch

from sqrtlayers.reference import make_spd, measure_errors

# docs/METHODS.md, "Anchors: the paper's methods as measured here": (forward, gradient) per kappa.
PAPER_TABLE: dict[tuple[str, bool], dict[float, tuple[float, float]]] = {
    ("mpa-lya", False): {1e1: (1.0e-2, 1.1e-2), 1e2: (6.4e-2, 1.9e-1), 1e3: (1.4e-1, 5.4e-1), 1e4: (2.1e-1, 8.0e-1), 1e6: (3.0e-1, 9.7e-1)},
    ("mtp-lya", False): {1e1: (8.7e-2, 8.8e-2), 1e2: (2.3e-1, 4.2e-1), 1e3: (3.7e-1, 7.1e-1), 1e4: (4.8e-1, 8.8e-1), 1e6: (6.2e-1, 9.9e-1)},
    ("mpa-lya", True): {1e1: (2.5e-2, 1.9e-1), 1e2: (2.8e-1, 6.6e-1), 1e3: (6.5e-1, 9.7e-1), 1e4: (8.7e-1, 1.0), 1e6: (9.8e-1, 1.0)},
    ("ns", False): {1e1: (2.4e-1, 1.8e-1), 1e2: (2.2e-1, 3.3e-1), 1e3: (1.9e-1, 6.4e-1), 1e4: (1.7e-1, 8.4e-1), 1e6: (1.4e-1, 9.8e-1)},
}

# Where our value and the table's differ by more than 2x and why.
KNOWN_DEVIATIONS = {
    # The table's inverse-root gradient at kappa = 10 is 1.9e-1; ours is 7.6e-2 (2.5x more
    # accurate; 1e2..1e6 agree within 2%). Our backward uses the method's own A^{1/2}; a lower
    # bound of 2x would fail on being better, so only the upper bound is checked there.
    ("mpa-lya", True, 1e1, "gradient"),
}

CASES = [(name, inverse, kappa) for (name, inverse), row in PAPER_TABLE.items() for kappa in row]


@pytest.mark.parametrize(("name", "inverse", "kappa"), CASES, ids=lambda v: str(v))
def test_within_factor_two_of_paper_table(name: str, inverse: bool, kappa: float) -> None:
    A = make_spd(64, kappa, batch=(4,), seed=0)
    fwd, grad = measure_errors(name, A, inverse=inverse, dtype=torch.float32)
    for label, ours, paper in (("forward", fwd.median(), PAPER_TABLE[name, inverse][kappa][0]),
                               ("gradient", grad.median(), PAPER_TABLE[name, inverse][kappa][1])):
        ours = float(ours)
        assert ours <= 2 * paper, f"{label}: {ours:.2e} > 2 x {paper:.1e}"
        if (name, inverse, kappa, label) not in KNOWN_DEVIATIONS:
            assert ours >= paper / 2, f"{label}: {ours:.2e} < {paper:.1e} / 2 (not the paper's method?)"
