"""Fast checks that the wheel's declared dependencies cover what its code imports.

An editable install in a full dev venv hides an undeclared import: everything is installed
anyway. A user's `pip install regflow` gets only `[project] dependencies`, so each top-level
third-party module the package's source imports must come from a declared distribution (or
from an optional extra, imported only inside the functions that need it), and each declared
distribution must be pinned (consistently) in constraints.txt.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
FIRST_PARTY = "regflow"
# Extras whose modules the package imports, only inside the functions that need them.
OPTIONAL_EXTRAS = ("sklearn", "onnx", "mlflow")
# MLflow copies this file into an exported model and runs it there; regflow never imports it.
NEVER_IMPORTED = {"src/regflow/registry/mlflow_pyfunc.py": "regflow.registry.mlflow_pyfunc"}


def package_folders() -> list[Path]:
    """The folders setuptools maps into the wheel (src/regflow, flows, tasks, ...)."""
    mapping: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
    return sorted({REPO / folder for folder in mapping.values()})


def imported_modules(source: Path) -> Iterator[tuple[str, int]]:
    """(top-level module, line) for each absolute import in `source`, lazy ones included."""
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.partition(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node.lineno


def top_level_imports(source: Path) -> Iterator[tuple[str, int]]:
    """(module, line) for the imports a module runs when it is imported (not in functions)."""
    for node in ast.parse(source.read_text(), filename=str(source)).body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


def sources() -> Iterator[Path]:
    for folder in package_folders():
        yield from sorted(folder.rglob("*.py"))


def third_party_imports() -> dict[str, list[str]]:
    """Each third-party top-level module the package imports -> where ("file:line")."""
    found: dict[str, list[str]] = {}
    for source in sources():
        for module, line in imported_modules(source):
            if module == FIRST_PARTY or module in sys.stdlib_module_names:
                continue
            found.setdefault(module, []).append(f"{source.relative_to(REPO)}:{line}")
    return found


def declared(*extras: str) -> dict[NormalizedName, Requirement]:
    """[project] dependencies, plus those of `extras`."""
    lines = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        lines += PYPROJECT["project"]["optional-dependencies"][extra]
    requirements = (Requirement(r) for r in lines)
    return {canonicalize_name(r.name): r for r in requirements}


def optional_modules() -> set[str]:
    """Top-level modules that only the optional extras' distributions provide."""
    core = set(declared())
    optional = set(declared(*OPTIONAL_EXTRAS)) - core
    return {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if {canonicalize_name(d) for d in dists} & optional
    }


def constraint_pins() -> dict[NormalizedName, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.partition("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_scan_sees_the_package() -> None:
    # Guards the test itself: a scan that finds nothing would pass vacuously.
    imports = third_party_imports()
    assert {"prefect", "torch", "yaml", "pydantic"} <= set(imports)
    assert REPO / "src" / "regflow" in package_folders()


def test_every_imported_third_party_module_is_declared() -> None:
    providers = importlib.metadata.packages_distributions()
    names = set(declared(*OPTIONAL_EXTRAS))
    problems = []
    for module, where in sorted(third_party_imports().items()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists:
            problems.append(f"{module} (no installed distribution provides it), at {where[0]}")
        elif not dists & names:
            wanted = " or ".join(sorted(dists))
            problems.append(f"{module}: declare {wanted} in [project] dependencies; at {where[0]}")
    assert not problems, "\n".join(problems)


def test_optional_extras_are_imported_only_when_used() -> None:
    # A top-level import of an extra's module would break `import regflow...` without it.
    optional = optional_modules()
    assert {"sklearn", "onnx", "mlflow"} <= optional  # guards the test itself
    problems = []
    for source in sources():
        where = str(source.relative_to(REPO))
        for module, line in top_level_imports(source):
            if module.partition(".")[0] in optional and where not in NEVER_IMPORTED:
                problems.append(f"{where}:{line} imports {module} at module level")
            if module in NEVER_IMPORTED.values():
                problems.append(f"{where}:{line} imports {module}, which MLflow runs on its own")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(declared(*OPTIONAL_EXTRAS)))
def test_declared_dependency_is_pinned_and_installed(name: NormalizedName) -> None:
    requirement = declared(*OPTIONAL_EXTRAS)[name]
    pin = constraint_pins().get(name)
    assert pin is not None, f"constraints.txt has no pin for {requirement.name}"
    assert requirement.specifier.contains(pin), f"{requirement} excludes the pin {pin}"
    # `==2.13.0` matches an installed local build such as 2.13.0+cpu, as pip's check does.
    installed = importlib.metadata.version(requirement.name)
    assert SpecifierSet(f"=={pin}").contains(installed), f"{name}: pin {pin}, .venv {installed}"
