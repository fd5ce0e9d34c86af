"""Every docstring example of the three packages runs and prints what it says.

The modules are found by walking the packages (``pkgutil``), so a new module's
examples are tested the moment it is added; no list is kept by hand.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from types import ModuleType

import pytest

PACKAGES = ("sqrtlayers", "lit_models", "datamodules")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Optional dependencies an example may use; without them its docstring's examples are left out.
OPTIONAL = ("timm",)


def _modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            # A __main__ module runs its program when imported.
            if info.name.rpartition(".")[2] != "__main__":
                names.append(info.name)
    return sorted(names)


MODULES = _modules()


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        # An optional dependency that is not installed; our own modules must import.
        if error.name is None or error.name.split(".")[0] in PACKAGES:
            raise
        pytest.skip(f"{name} needs {error.name}")


def _missing_dependency(test: doctest.DocTest) -> str | None:
    """The optional dependency ``test``'s examples use and this environment lacks, if any."""
    for package in OPTIONAL:
        # Named anywhere (``import timm``, ``TimmSoViT(...)``): a docstring's examples run together.
        uses = any(re.search(package, example.source, re.IGNORECASE) for example in test.examples)
        if uses and not _importable(package):
            return package
    return None


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, tmp_path, monkeypatch) -> None:
    module = _import(name)
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    missing = set()
    for test in doctest.DocTestFinder().find(module, name, globs=vars(module).copy()):
        package = _missing_dependency(test)
        if package is None:
            runner.run(test)
        else:
            missing.add(package)
    result = runner.summarize(verbose=False)
    if result.attempted == 0 and missing:
        pytest.skip(f"the examples of {name} need {sorted(missing)}")
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_walk_finds_every_package_and_the_examples_it_must():
    # The modules whose examples the suite has always run, and one new per package.
    for name in ("sqrtlayers.functional", "sqrtlayers.backends.accurate",
                 "sqrtlayers.layers.covariance_pooling", "lit_models.classifier",
                 "lit_models.network_config", "datamodules.splits", "datamodules.digits"):
        assert name in MODULES
        examples = doctest.DocTestFinder().find(importlib.import_module(name))
        assert sum(len(t.examples) for t in examples) > 0, name
