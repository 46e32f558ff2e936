"""A read-only registry (read-only mount, or a folder we cannot write): reading works, every
write ends with exit 2 and one `registry_read_only` line, and no file in it changes.

Root ignores permission bits, so two ways in: `Registry.open(read_only=True)` (and the CLI
with the detection forced) runs anywhere; the CLI as user `nobody` on a chmod-ed copy runs
when the tests run as root and `setpriv` can drop privileges.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from runfolder import sample_frame
from typer.testing import CliRunner

from regflow.cli import app
from regflow.registry import Registry, RegistryReadOnlyError
from regflow.registry import location as reg_location

runner = CliRunner()
READS = [
    ["models", "list"],
    ["models", "show", "demo:1"],
    ["models", "verify"],
    ["models", "monitor", "demo"],
]
WRITES = [
    ["models", "promote", "demo:2"],
    ["models", "rollback", "demo"],
    ["models", "delete", "demo:1"],
    ["models", "gc"],
]
NOBODY = 65534


def tree_state(root: Path) -> dict[str, str]:
    """Every path under `root` with its mode and, for files, its SHA-256."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[rel] = f"{oct(path.stat().st_mode)} {digest}"
    return out


@pytest.fixture
def filled(tmp_path: Path, run_factory: Callable[..., Path]) -> Path:
    """A closed registry with demo:1 (champion, then demo:2 promoted over it) and demo:2."""
    root = tmp_path / "registry"
    with Registry.open(root) as reg:
        reg.register("demo", run_factory(coef=[2.0], intercept=1.0))
        reg.promote("demo:1")
        reg.register("demo", run_factory(coef=[3.0], intercept=0.5))
    shutil.rmtree(root / "store" / ".staging")  # readers must not bring it back
    return root


def check_write_refused(result: object, as_json: bool) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    stderr = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert stderr.startswith("regflow: registry ") and "is read-only" in stderr
    assert len(stderr.strip().splitlines()) == 1
    if as_json:
        payload = json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[attr-defined]
        assert payload["check"] == "registry_read_only"
        assert payload["error"] == "RegistryReadOnlyError" and payload["status"] == "invalid"


def test_api_reads_and_refuses_writes(filled: Path, run_factory: Callable[..., Path]) -> None:
    before = tree_state(filled)
    with Registry.open(filled, create=False, read_only=True) as reg:
        assert reg.read_only
        assert [m.name for m in reg.list_models()] == ["demo"]
        assert reg.resolve("demo@champion").version == 1
        assert reg.verify(None) == [] and reg.leftovers() == []
        assert reg.load("demo:1").ref == "demo:1"
        writes: list[Callable[[], object]] = [
            lambda: reg.promote("demo:2"),
            lambda: reg.rollback("demo"),
            lambda: reg.delete("demo:2"),
            reg.gc,
            lambda: reg.register("demo", run_factory()),
        ]
        for write in writes:
            with pytest.raises(RegistryReadOnlyError, match="is read-only") as caught:
                write()
            assert caught.value.exit_code == 2
    assert tree_state(filled) == before  # no -wal/-shm, no .staging, nothing moved


def test_read_only_url_uses_immutable_only_without_wal_files(filled: Path) -> None:
    where = reg_location.resolve_location(filled, store=None, create=False)
    assert "mode=ro&immutable=1" in reg_location.read_only_index_url(where)
    for suffix in ("-wal", "-shm"):
        (filled / f"index.db{suffix}").touch()
    assert "immutable" not in reg_location.read_only_index_url(where)


def test_writer_open_of_read_only_registry_is_read_only(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `regflow train` opens with create=True: a read-only registry must not be written then.
    monkeypatch.setattr(reg_location.os, "access", lambda *_a, **_k: False)
    with Registry.open(filled) as reg:
        assert reg.read_only
    (filled.parent / "empty").mkdir()
    with pytest.raises(RegistryReadOnlyError, match="create a registry there"):
        Registry.open(filled.parent / "empty")


@pytest.fixture
def forced(filled: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """As if this process could not write the registry (what a non-root user sees)."""
    monkeypatch.setattr(reg_location, "is_read_only", lambda _where: True)
    before = tree_state(filled)
    yield filled
    assert tree_state(filled) == before


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_on_read_only_registry(forced: Path, as_json: bool) -> None:
    flag = ["--json"] if as_json else []
    for args in READS:
        done = runner.invoke(app, [*args, "--registry", str(forced), *flag])
        assert done.exit_code == 0, (args, done.stdout, done.stderr)
    for args in WRITES:
        check_write_refused(runner.invoke(app, [*args, "--registry", str(forced), *flag]), as_json)


@pytest.mark.usefixtures("prefect_harness")
def test_predict_on_read_only_registry(forced: Path, tmp_path: Path) -> None:
    from regflow.cli.predict import predict_command

    data = tmp_path / "demo.csv"
    labelled = sample_frame(["x"], n=3)
    labelled["y"] = 2.0 * labelled["x"]  # with the target: monitored, but not recordable
    labelled.to_csv(data, index=False)
    predict = typer.Typer()
    predict.command("predict")(predict_command)
    predict.command("noop")(lambda: None)  # keep "predict" a subcommand
    args = ["predict", str(data), "--out", str(tmp_path / "p.csv"), "--registry", str(forced)]
    done = runner.invoke(predict, [*args, "--json"])
    assert done.exit_code == 0, (done.stdout, done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["model"]["ref"] == "demo:1"
    assert result["monitoring"]["rows_labelled"] == 3 and result["monitoring_recorded"] is False


def _nobody_reason() -> str | None:
    """Why the tests cannot run the CLI as an unprivileged user here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to switch to user nobody (as non-root, chmod alone is enough)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    probe = subprocess.run(
        [*_as_nobody(), sys.executable, "-c", "import regflow.cli"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"user nobody cannot import regflow here: {probe.stderr.decode()[-200:]}"
    return None


def _as_nobody() -> list[str]:
    ids = str(NOBODY)
    return ["setpriv", f"--reuid={ids}", f"--regid={ids}", "--clear-groups"]


@pytest.fixture
def chmodded(filled: Path) -> Iterator[Path]:
    """A copy of the registry, folders 0o555 and files 0o444, in a folder nobody can reach."""
    reason = _nobody_reason()
    if reason is not None:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="regflow-ro-"))  # pytest's tmp_path is 0o700
    base.chmod(0o755)
    root = base / "registry"
    shutil.copytree(filled, root)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(base)


def test_cli_as_unprivileged_user_on_chmodded_registry(chmodded: Path) -> None:
    before = tree_state(chmodded)
    env = {**os.environ, "HOME": str(chmodded.parent)}
    for args in READS + WRITES:
        cmd = [*_as_nobody(), sys.executable, "-m", "regflow", *args]
        done = subprocess.run(
            [*cmd, "--registry", str(chmodded), "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if args in READS:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        else:
            done.exit_code = done.returncode  # type: ignore[attr-defined]
            check_write_refused(done, as_json=True)
    assert tree_state(chmodded) == before
