"""The built wheel, installed without the checkout: complete and usable on its own.

The dev venv's editable install maps the checkout's folders into `regflow`, which hides a
wheel that misses a file or a module that only works from the repository root. Here the
wheel is built from a copy of the sources, installed into a fresh venv whose only link to
the dev venv is a `.pth` line naming its site-packages (for the dependencies: no network
here), and run from an empty directory. The dev venv's `.pth` files, the editable finder
among them, are not processed through that line, so the checkout cannot leak in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1", "PIP_NO_INPUT": "1"}


def execute(
    command: list[str | Path], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )


def run(command: list[str | Path], cwd: Path) -> str:
    """Run `command`; fail the test with its output unless it exits 0."""
    done = execute(command, cwd, {**os.environ, **PIP_ENV})
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{output[-6000:]}"
    return done.stdout


def pip(*args: str | Path, cwd: Path) -> None:
    """The dev venv's pip (offline: PIP_NO_INDEX)."""
    run([sys.executable, "-m", "pip", *args], cwd=cwd)


def build_wheel(project: Path, dist: Path) -> Path:
    """`pip wheel PROJECT --no-deps` with the dev venv's setuptools, into `dist`."""
    pip("wheel", project, "--no-deps", "--no-build-isolation", "--wheel-dir", dist, cwd=dist)
    (wheel,) = dist.glob("*.whl")
    return wheel


def copy_sources(dest: Path) -> Path:
    """pyproject.toml, the readme and the folders it maps into the package: a clean tree.

    (Building in the checkout would reuse, and race on, its build/ folder, whose stale files
    setuptools puts into the wheel.)
    """
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    shutil.copy2(REPO / "pyproject.toml", dest)
    shutil.copy2(REPO / config["project"]["readme"], dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in set(config["tool"]["setuptools"]["package-dir"].values()):
        shutil.copytree(REPO / folder, dest / folder, ignore=ignore)
    return dest


@dataclass(frozen=True)
class Venv:
    root: Path
    site_packages: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def install(self, wheel: Path) -> None:
        # The dev venv's pip, writing into this prefix; --ignore-installed so that pip never
        # looks at (or uninstalls) the editable regflow it sees in its own environment.
        pip(
            "install",
            "--no-deps",
            "--ignore-installed",
            "--prefix",
            self.root,
            wheel,
            cwd=self.root,
        )

    def env(self, home: Path) -> dict[str, str]:
        """A clean environment: a temporary Prefect home, no server, no checkout on the path."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PREFECT_API_URL", "PREFECT_PROFILE"}
        }
        env.update(
            PREFECT_HOME=str(home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
            PYTHONNOUSERSITE="1",
            REGFLOW_REGISTRY=str(home / "registry"),
        )
        return env


def make_venv(root: Path) -> Venv:
    """A fresh venv that sees the dev venv's packages only through one `.pth` line."""
    run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(run([root / "bin" / "python", "-c", code], cwd=root).strip())
    # The dependencies: the site-packages of the interpreter running the tests (not REPO).
    deps = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (site_packages / "regflow-test-deps.pth").write_text("".join(f"{p}\n" for p in deps))
    return Venv(root=root, site_packages=site_packages)


def python(venv: Venv, home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return execute([venv.python, *args], cwd, venv.env(home))


def train_json(venv: Venv, tmp: Path) -> dict[str, Any]:
    """`python -m regflow train` on the packaged seed.csv, from an empty directory."""
    workdir = tmp / "empty"
    workdir.mkdir()
    seed = venv.site_packages / "regflow" / "data" / "seed.csv"
    done = python(
        venv,
        tmp / "prefect-home",
        workdir,
        *("-m", "regflow", "train", str(seed), "--target", "y", "--features", "x"),
        *("--registry", str(tmp / "registry"), "--out", str(tmp / "runs"), "--json"),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"regflow train exited {done.returncode}:\n{output[-6000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = copy_sources(tmp_path_factory.mktemp("regflow-src"))
    return build_wheel(source, tmp_path_factory.mktemp("regflow-dist"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    env = make_venv(tmp_path_factory.mktemp("fresh") / "venv")
    env.install(wheel)
    return env


def test_wheel_has_one_import_root_and_its_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode() == "regflow\n"
    assert {"regflow/deployments/prefect.yaml", "regflow/data/seed.csv"} <= set(names)
    assert "regflow/flows/training.py" in names
    # The registry opens its index through these (Alembic loads them by path).
    assert {
        "regflow/registry/migrations/env.py",
        "regflow/registry/migrations/versions/0001_initial.py",
        "regflow/registry/migrations/versions/0002_monitoring.py",
    } <= set(names)
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"regflow"}


def test_installed_package_comes_from_the_fresh_venv(venv: Venv, tmp_path: Path) -> None:
    code = """if True:
        import importlib.metadata, importlib.resources, json, sys
        import regflow, regflow.flows.training, regflow.deployments.serve as serve
        from regflow import train  # the Python API, loaded lazily
        dist = importlib.metadata.distribution("regflow")
        print(json.dumps({
            "files": [
                regflow.__file__, regflow.flows.training.__file__, serve.__file__,
                sys.modules[train.__module__].__file__,
            ],
            "top_level": dist.read_text("top_level.txt"),
            "prefect_file": str(serve.DEFAULT_PREFECT_FILE),
            "seed": str(importlib.resources.files("regflow.data").joinpath("seed.csv")),
            "editable": [m for m in sys.modules if m.startswith("__editable__")],
        }))
    """
    done = python(venv, tmp_path / "home", tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr[-6000:]
    found = json.loads(done.stdout)
    assert found["top_level"] == "regflow\n"
    assert not found["editable"], "the dev venv's editable finder leaked into the fresh venv"
    for path in [*found["files"], found["prefect_file"], found["seed"]]:
        assert Path(path).is_relative_to(venv.site_packages), path
        assert Path(path).is_file(), path


def test_installed_version_is_the_distribution_s(venv: Venv, tmp_path: Path) -> None:
    done = python(venv, tmp_path / "home", tmp_path, "-m", "regflow", "--version")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert (done.returncode, done.stdout) == (0, f"regflow {version}\n"), done.stderr


def test_installed_train_runs_from_an_empty_directory(venv: Venv, tmp_path: Path) -> None:
    result = train_json(venv, tmp_path)
    assert result["status"] == "completed", result
    assert Path(result["paths"]["model"]).is_relative_to(tmp_path / "runs")


def test_installed_serve_lists_and_builds_deployments_anywhere(venv: Venv, tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = python(venv, home, tmp_path, "-m", "regflow", "serve", "--dry-run")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "as 'nightly'" in listed.stdout
    assert "as 'hourly'" in listed.stdout
    # What `serve` would register, short of serving: module entrypoints that Prefect's own
    # loader (the one a served run uses) imports from the fresh venv, and the example data
    # resolved to the packaged file since ./data/seed.csv does not exist here.
    code = """if True:
        import json, sys
        from prefect.flows import load_flow_from_entrypoint
        from regflow.deployments.serve import load_specs, to_runner_deployment
        out = {}
        for spec in load_specs():
            deployment = to_runner_deployment(spec)
            flow = load_flow_from_entrypoint(deployment.entrypoint, use_placeholder_flow=False)
            file = sys.modules[flow.fn.__module__].__file__
            out[spec.name] = [deployment.entrypoint, file, deployment.parameters]
        print(json.dumps(out))
    """
    done = python(venv, home, tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr[-6000:]
    built = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(built) == {"nightly", "hourly", "partitioned"}
    bundled = venv.site_packages / "regflow" / "data"
    for name, (entrypoint, file, parameters) in built.items():
        assert entrypoint.startswith("regflow.flows."), entrypoint
        assert Path(file).is_relative_to(venv.site_packages), file
        data = bundled / ("parts" if name == "partitioned" else "seed.csv")
        assert data.exists() and str(data) in json.dumps(parameters), parameters


def stand_in_wheel(name: str, root: Path) -> Path:
    """A distribution `name` with a top-level package `name` that fails when imported."""
    project, dist = root / name, root / f"{name}-dist"
    package = project / name
    package.mkdir(parents=True)
    dist.mkdir()
    (project / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "9.9"\n'
        f'[tool.setuptools]\npackages = ["{name}"]\n'
    )
    fail = f'raise ImportError("regflow imported the stand-in top-level {name!r}")\n'
    for module in ("__init__.py", "events.py") if name == "tasks" else ("__init__.py",):
        (package / module).write_text(fail)
    return build_wheel(project, dist)


def test_top_level_tasks_and_flows_distributions_do_not_clash(wheel: Path, tmp_path: Path) -> None:
    # Packages named `tasks` and `flows` exist in the wild; regflow neither ships nor
    # imports those names, so installing them next to it changes nothing.
    venv = make_venv(tmp_path / "venv")
    venv.install(wheel)
    for name in ("tasks", "flows"):
        venv.install(stand_in_wheel(name, tmp_path / "stand-ins"))
    assert "stand-in" in (venv.site_packages / "tasks" / "events.py").read_text()
    result = train_json(venv, tmp_path)
    assert result["status"] == "completed", result
