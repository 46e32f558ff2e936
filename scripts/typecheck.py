"""Type-check the `regflow` package with mypy: `.venv/bin/python scripts/typecheck.py [MYPY ARGS]`.

Why this script exists: `regflow` is one import root assembled from several folders by
setuptools' `package-dir` (src/regflow, plus flows/, tasks/, schemas/, deployments/ and data/
as `regflow.flows`, `regflow.tasks`, ...). The editable install resolves those through a
meta-path finder that setuptools installs into site-packages, and mypy does not run import
hooks: it only searches directories. So mypy cannot see `regflow.flows` and friends, neither
from site-packages nor from the source tree.

This script builds a plain directory view of the package in build/typecheck/regflow/, made of
symlinks (each entry of the root package's folder, and each mapped folder at its subpackage
name), runs `mypy -p regflow` against it (`mypy_path` in pyproject's [tool.mypy] points at
build/typecheck), and rewrites the view's paths in mypy's output back to the real files, so
that errors point (and click through) to what you edit. The mapping is read from
pyproject.toml's [tool.setuptools.package-dir], the one source of truth. It exits with mypy's
exit code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW = Path("build") / "typecheck"
PACKAGE = "regflow"


def package_dirs(pyproject: Path) -> dict[str, str]:
    """`[tool.setuptools.package-dir]` for the `regflow` import root: dotted name -> folder."""
    with pyproject.open("rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    dirs = {
        name: folder
        for name, folder in mapping.items()
        if name == PACKAGE or name.startswith(f"{PACKAGE}.")
    }
    if PACKAGE not in dirs:
        raise SystemExit(f"pyproject.toml maps no folder to {PACKAGE!r}")
    return dirs


def build_view(root: Path, dirs: dict[str, str]) -> dict[str, str]:
    """Lay out VIEW/regflow as symlinks; return {view path: real path}, both relative to root."""
    view_root = root / VIEW
    if view_root.exists():
        shutil.rmtree(view_root)
    links: dict[Path, Path] = {}
    # The root package's folder entry by entry, so mapped subpackages can sit beside them.
    for entry in sorted((root / dirs[PACKAGE]).iterdir()):
        if entry.name != "__pycache__" and not entry.name.startswith("."):
            links[Path(PACKAGE, entry.name)] = Path(dirs[PACKAGE], entry.name)
    for name, folder in dirs.items():
        if name != PACKAGE:
            # A mapped subpackage replaces any same-named entry, as setuptools' mapping does.
            links[Path(*name.split("."))] = Path(folder)
    for view_rel, real_rel in links.items():
        link = view_root / view_rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(root / real_rel, link.parent))
    return {(VIEW / v).as_posix(): r.as_posix() for v, r in links.items()}


def rewrite(text: str, paths: dict[str, str], root: Path) -> str:
    """Replace view paths (relative or absolute) in mypy's output with the real ones."""
    alternatives: dict[str, str] = {}
    for view, real in paths.items():
        alternatives[view] = real
        alternatives[(root / view).as_posix()] = (root / real).as_posix()
    # Longest first, and only where a path component ends (not inside a longer file name).
    pattern = re.compile(
        "|".join(re.escape(v) for v in sorted(alternatives, key=len, reverse=True)) + r"(?![\w.-])"
    )
    return pattern.sub(lambda m: alternatives[m.group(0)], text)


def main(argv: list[str]) -> int:
    paths = build_view(ROOT, package_dirs(ROOT / "pyproject.toml"))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "-p", PACKAGE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(rewrite(result.stdout, paths, ROOT))
    sys.stderr.write(rewrite(result.stderr, paths, ROOT))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
