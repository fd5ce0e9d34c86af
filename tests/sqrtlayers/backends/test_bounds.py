"""The declared accuracy bounds: lookup rules, and the README's accuracy table held to them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import sqrtlayers as sl
from sqrtlayers.backends import NewtonSchulzBackend
from sqrtlayers.backends.bounds import DECLARATIONS, KAPPA_BANDS, declaration_for, declared_bound, markdown_table

README = Path(__file__).resolve().parents[3] / "README.md"
BUILT_IN = ("accurate", "auto", "eigh", "mpa", "mpa-lya", "mtp", "mtp-lya", "ns", "ns-lya", "svd")
FINITE_BANDS = [kappa for kappa in KAPPA_BANDS if math.isfinite(kappa)]


def readme_table() -> list[list[str]]:
    """Rows (cells) of the README's accuracy table: the one whose header starts with
    ``| backend | root |``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| backend | root |")), None)
    assert start is not None, "README.md has no accuracy table (header '| backend | root | ...')"
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_backend_is_declared(name: str) -> None:
    assert declaration_for(name) is not None


def test_readme_table_within_declared_bounds() -> None:
    rows = readme_table()
    assert rows, "README has no accuracy table"
    declared = {d.name: d for d in DECLARATIONS}
    for backend, root, *cells in rows:
        name, root = backend.strip("`"), root.strip("`")
        assert name in declared, f"README lists {name!r}, which declares no bounds"
        assert len(cells) == len(FINITE_BANDS), f"row {name} {root}: {len(cells)} cells"
        for kappa, cell in zip(FINITE_BANDS, cells):
            forward, gradient = (float(x) for x in re.split(r"\s*/\s*", cell))
            bound = declared[name].bound(root, torch.float32, kappa)
            assert forward <= bound.forward, f"{name} {root} kappa {kappa:g}: README {forward} > {bound.forward}"
            assert gradient <= bound.gradient, f"{name} {root} kappa {kappa:g}: README {gradient} > {bound.gradient}"


def test_readme_table_lists_every_declaration() -> None:
    listed = {(row[0].strip("`"), row[1].strip("`")) for row in readme_table()}
    for declaration in DECLARATIONS:
        for root in ("sqrtm", "inv_sqrtm"):
            assert (declaration.name, root) in listed, f"README's table misses {declaration.name} {root}"


def test_generated_table_has_a_row_per_declaration_and_root() -> None:
    assert len(markdown_table().splitlines()) == 2 + 2 * len(DECLARATIONS)


@pytest.mark.parametrize("declaration", DECLARATIONS, ids=lambda d: d.name)
def test_bounds_grow_with_kappa_and_are_looser_in_float32(declaration) -> None:
    for root in ("sqrtm", "inv_sqrtm"):
        for dtype in (torch.float32, torch.float64):
            bounds = [declaration.bound(root, dtype, kappa) for kappa in FINITE_BANDS]
            forwards = [b.forward for b in bounds]
            assert forwards == sorted(forwards), (root, dtype, forwards)
        for kappa in FINITE_BANDS:
            single = declaration.bound(root, torch.float32, kappa)
            double = declaration.bound(root, torch.float64, kappa)
            assert double.forward <= single.forward and double.gradient <= single.gradient


def test_lookup_by_class_and_options_not_by_name() -> None:
    sl.register_backend("test-bounds-ns", lambda: NewtonSchulzBackend(5))
    try:
        assert declaration_for("test-bounds-ns") is declaration_for("ns")
    finally:
        sl.unregister_backend("test-bounds-ns")
    assert declaration_for("svd") is declaration_for("eigh")
    assert declaration_for(sl.get_backend("accurate", kappa=1e4)).name == "accurate(kappa=1e4)"


def test_undeclared_configuration_gives_none() -> None:
    configured = sl.get_backend("ns", iters=20)
    assert declaration_for(configured) is None
    assert declared_bound(configured, inverse=False, dtype=torch.float32, kappa=10.0) is None


def test_half_precision_adds_the_rounding_of_the_output() -> None:
    single = declared_bound("eigh", inverse=True, dtype=torch.float32, kappa=50.0)
    for dtype, unit_roundoff in ((torch.float16, 2.0**-11), (torch.bfloat16, 2.0**-8)):
        half = declared_bound("eigh", inverse=True, dtype=dtype, kappa=50.0)
        assert half.forward == pytest.approx(single.forward + unit_roundoff)
        assert half.gradient == pytest.approx(single.gradient + unit_roundoff)


def test_singular_band_bounds_the_root_only() -> None:
    root = declared_bound("eigh", inverse=False, dtype=torch.float32, kappa=math.inf)
    assert root is not None and math.isfinite(root.forward) and root.gradient == math.inf
    assert declared_bound("eigh", inverse=True, dtype=torch.float32, kappa=math.inf) is None


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"kappa must be a number >= 1 \(inf: a singular matrix\), got 0\.5"):
        declared_bound("eigh", inverse=False, dtype=torch.float32, kappa=0.5)
    with pytest.raises(ValueError, match="dtype must be a floating-point dtype, got torch.int32"):
        declared_bound("eigh", inverse=False, dtype=torch.int32, kappa=10.0)
    with pytest.raises(ValueError, match="unknown backend 'no-such'"):
        declared_bound("no-such", inverse=False, dtype=torch.float32, kappa=10.0)
