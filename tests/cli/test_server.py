"""`regflow server`: a real local Prefect server in a temporary PREFECT_HOME, used by train.

Every test here stops what it started (the `home` fixture's finalizer), so no server outlives
the suite; the rest of the suite runs with REGFLOW_NO_SERVER=1 (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from regflow.runtime.local_server import LOG_FILE, STATE_FILE, stop_server

REPO = Path(__file__).resolve().parents[2]
REGFLOW = [sys.executable, "-m", "regflow.cli"]
SEED_TRAIN = ["train", "data/seed.csv", "--target", "y", "--features", "x", "--json"]


def alive(pid: int) -> bool:
    """The pid runs and is no zombie (a reparented server may wait a moment to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (the server and any children), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A Prefect home of its own; whatever server started in it is stopped afterwards."""
    prefect_home = tmp_path / "prefect-home"
    prefect_home.mkdir()
    yield prefect_home
    stop_server(prefect_home)


def run_cli(args: list[str], home: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PREFECT_API_URL", "REGFLOW_NO_SERVER", "PREFECT_PROFILE"}
    }
    env.update(PREFECT_HOME=str(home), REGFLOW_REGISTRY=str(tmp_path / "registry"))
    return subprocess.run(
        [*REGFLOW, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )


def last_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def flow_run_state(api_url: str, flow_run_id: str) -> str:
    """The run's state as the server at `api_url` recorded it, read with Prefect's client."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    assert run.state is not None
    return str(run.state.type.value)


def test_start_status_train_stop(home: Path, tmp_path: Path) -> None:
    assert last_json(run_cli(["server", "status", "--json"], home, tmp_path))["running"] is False

    started = last_json(run_cli(["server", "start", "--port", "0", "--json"], home, tmp_path))
    assert started["running"] and started["started"]
    pid, api_url = started["pid"], started["api_url"]
    assert alive(pid) and (home / STATE_FILE).exists()

    again = last_json(run_cli(["server", "start", "--json"], home, tmp_path))
    assert (again["started"], again["pid"], again["api_url"]) == (False, pid, api_url)
    status = last_json(run_cli(["server", "status", "--json"], home, tmp_path))
    assert (status["running"], status["healthy"], status["api_url"]) == (True, True, api_url)

    trained = run_cli([*SEED_TRAIN, "--out", str(tmp_path / "runs")], home, tmp_path)
    outcome = last_json(trained)
    assert outcome["status"] == "completed"
    assert "started a local Prefect server" not in trained.stderr  # it reused the running one
    assert flow_run_state(api_url, outcome["flow_run_id"]) == "COMPLETED"

    members = group_members(pid)
    assert pid in members
    stopped = last_json(run_cli(["server", "stop", "--json"], home, tmp_path))
    assert stopped["stopped"] is True
    assert not alive(pid) and group_members(pid) == []
    assert not (home / STATE_FILE).exists()
    assert last_json(run_cli(["server", "status", "--json"], home, tmp_path))["running"] is False
    assert last_json(run_cli(["server", "stop", "--json"], home, tmp_path))["stopped"] is False


def servers_of(home: Path) -> list[int]:
    """Live Prefect server processes whose PREFECT_HOME is `home`, from /proc."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = f"PREFECT_HOME={home}".encode() in environ
        if ours and b"prefect" in cmdline and b"server" in cmdline and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_train_starts_a_server_once_and_leaves_it_running(home: Path, tmp_path: Path) -> None:
    first = run_cli([*SEED_TRAIN, "--out", str(tmp_path / "a")], home, tmp_path)
    outcome = last_json(first)
    assert outcome["status"] == "completed"
    assert "started a local Prefect server at http://127.0.0.1:" in first.stderr
    status = last_json(run_cli(["server", "status", "--json"], home, tmp_path))
    assert status["running"] and status["healthy"]
    # The first run, whose server started with the command, is in that server's history.
    assert flow_run_state(status["api_url"], outcome["flow_run_id"]) == "COMPLETED"

    second = run_cli([*SEED_TRAIN, "--force", "--out", str(tmp_path / "b")], home, tmp_path)
    outcome = last_json(second)
    assert "started a local Prefect server" not in second.stderr
    assert flow_run_state(status["api_url"], outcome["flow_run_id"]) == "COMPLETED"


def test_a_command_that_ends_before_its_flow_leaves_no_server(home: Path, tmp_path: Path) -> None:
    # --help runs no flow: no server is spawned at all.
    assert run_cli(["train", "--help"], home, tmp_path).returncode == 0
    assert not (home / LOG_FILE).exists()

    # train spawns the server at process start, before its checks; a typo in the path then
    # ends the command (exit 2), and the server it spawned is stopped, not left running.
    failed = run_cli(["train", str(tmp_path / "missing.csv"), "--target", "y"], home, tmp_path)
    assert failed.returncode == 2, failed.stderr
    assert (home / LOG_FILE).exists()  # it was spawned...
    assert not (home / STATE_FILE).exists()  # ...and stopped
    assert servers_of(home) == []
    assert "started a local Prefect server" not in failed.stderr


def test_stale_state_is_removed_and_a_foreign_pid_is_never_signalled(
    home: Path, tmp_path: Path
) -> None:
    # A pid that no longer runs: the record is stale.
    gone = subprocess.Popen(["true"])
    gone.wait()
    state = {
        "pid": gone.pid,
        "port": 1,
        "api_url": "http://127.0.0.1:1/api",
        "log": str(home / "x.log"),
        "prefect_home": str(home),
    }
    (home / STATE_FILE).write_text(json.dumps(state))
    assert last_json(run_cli(["server", "status", "--json"], home, tmp_path))["running"] is False
    assert not (home / STATE_FILE).exists()

    # A live pid that is no Prefect server (a reused pid): not running, and stop leaves it be.
    with subprocess.Popen(["sleep", "60"]) as other:
        try:
            (home / STATE_FILE).write_text(json.dumps({**state, "pid": other.pid}))
            assert last_json(run_cli(["server", "stop", "--json"], home, tmp_path)) == {
                "status": "ok",
                "stopped": False,
                "prefect_home": str(home),
            }
            assert other.poll() is None
        finally:
            other.kill()
