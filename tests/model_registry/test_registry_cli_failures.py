"""Registry-related failures end as one `regflow: ...` line, the right exit code, no traceback.

Huge versions, garbage index files, missing database drivers, an unreachable Prefect API and
output paths that would write into the registry (or over the input) are all expected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regflow.cli import app
from regflow.errors import UsageError
from regflow.registry import InvalidReferenceError, Registry, parse_ref
from regflow.registry.location import inside_registry, refuse_output_inside_registry

runner = CliRunner()


def call(*args: str, code: int) -> dict:
    """Run `regflow ARGS --json`; check the exit code, one regflow line, no traceback."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("regflow: ")
    return json.loads(result.stdout.strip().splitlines()[-1])


def problem_check(payload: dict) -> str:
    return payload["problems"][0]["check"]


@pytest.fixture
def seeded(registry: Registry, run_factory) -> Registry:
    registry.register("seed", run_factory(name="seed"))
    return registry


def test_version_beyond_int64_is_an_invalid_reference(seeded: Registry) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_ref("seed:9223372036854775808")
    assert parse_ref("seed:9223372036854775807").version == 2**63 - 1
    payload = call(
        "models", "show", "seed:999999999999999999999", "--registry", seeded.location, code=2
    )
    assert payload["error"] == "InvalidReferenceError"


@pytest.mark.parametrize("command", [["list"], ["show", "seed"], ["verify"]])
def test_garbage_index_names_the_file(tmp_path: Path, command: list[str]) -> None:
    folder = tmp_path / "reg"
    folder.mkdir()
    (folder / "index.db").write_bytes(os.urandom(4096))
    payload = call("models", *command, "--registry", str(folder), code=2)
    assert payload["message"] == (
        f"{folder.resolve() / 'index.db'} is not a regflow registry index (file is not a database)"
    )


def test_registry_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    payload = call("models", "list", "--registry", str(file), code=2)
    assert str(file) in payload["message"]


def test_missing_driver_names_the_package() -> None:
    try:
        import pymysql  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        pytest.skip("pymysql is installed")
    payload = call("models", "list", "--registry", "mysql+pymysql://u@127.0.0.1:1/x", code=2)
    assert "pip install 'pymysql'" in payload["message"]


def test_predict_without_a_prefect_api_is_one_line(seeded: Registry, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n2\n")
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    env.pop("REGFLOW_DEBUG", None)
    args = ["predict", str(data), "--model", "seed:1", "--registry", seeded.location, "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "regflow.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("regflow: ")
    ]
    assert "regflow: could not run the flow: " in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "failed"


def test_inside_registry_resolves_links_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "reg"
    (registry / "store").mkdir(parents=True)
    (tmp_path / "link").symlink_to(registry / "store")
    monkeypatch.chdir(tmp_path)
    assert inside_registry("link/seed/2/s.csv", "reg")
    assert inside_registry(tmp_path / "reg", str(registry))
    assert not inside_registry(tmp_path / "out.csv", "reg")
    assert not inside_registry("s3://bucket/reg/store/x.csv", "reg")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert inside_registry(tmp_path / "x.db-wal", db)
    assert inside_registry(tmp_path / "store" / "a.csv", db)
    with pytest.raises(UsageError) as caught:
        refuse_output_inside_registry(registry / "index.db", registry)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "where", ["store/seed/1/s.csv", pytest.param("index.db.csv", marks=pytest.mark.sqlite_only)]
)
def test_predict_refuses_an_output_inside_the_registry(
    seeded: Registry, tmp_path: Path, where: str
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n2\n")
    out = Path(seeded.store.location).parent / where
    args = ["predict", str(data), "--model", "seed:1", "--registry", seeded.location]
    payload = call(*args, "--out", str(out), code=2)
    assert problem_check(payload) == "output_path"
    assert not out.exists()
    assert seeded.verify("seed:1") == []


def test_predict_refuses_to_overwrite_its_input(
    seeded: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n2\n")
    monkeypatch.chdir(tmp_path)
    args = ["predict", "d.csv", "--model", "seed:1", "--registry", seeded.location]
    assert problem_check(call(*args, "--out", str(data), code=2)) == "output_path"
    assert data.read_text() == "x\n1\n2\n"


def test_train_refuses_unsafe_out(seeded: Registry, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x,y\n1,2\n2,4\n3,7\n")
    args = ["train", str(data), "--target", "y", "--registry", seeded.location]
    inside = Path(seeded.store.location)
    assert problem_check(call(*args, "--out", str(inside), code=2)) == "output_path"
    assert problem_check(call(*args, "--out", str(data), code=2)) == "output_path"
