"""The docstring examples of the benchmark modules run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import benchmarks


def test_module_doctests() -> None:
    # plots imports matplotlib, __main__ is the command line: neither has examples.
    names = [f"benchmarks.{m.name}" for m in pkgutil.iter_modules(benchmarks.__path__) if m.name not in ("__main__", "plots")]
    results = {name: doctest.testmod(importlib.import_module(name)) for name in names}
    assert {name: r.failed for name, r in results.items() if r.failed} == {}
    assert sum(r.attempted for r in results.values()) >= 3
