"""The progress display: on stderr at a terminal, never with --json, --quiet, NO_COLOR or a
piped stderr, and never on stdout (the command's answer is unchanged)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from run_checks import read_terminal

REPO = Path(__file__).resolve().parents[2]
SEED = str(REPO / "data" / "seed.csv")
STEPS = ("ingest seed.csv", "validate", "correlation gate", "train on cpu", "evaluate")
BAR = "━"
STARTING = "start Prefect and the flow run"


def run(args: list[str], env: dict[str, str], tty: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `args`, stderr a pseudo-terminal when `tty`, else a pipe.
    stdout is always a pipe, so what lands there is exactly the command's answer."""
    if not tty:
        done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args, stdin=follower, stdout=subprocess.PIPE, stderr=follower, env=env, cwd=REPO
    )
    os.close(follower)
    seen = read_terminal(leader, process, 300)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    process.wait()
    return process.returncode, stdout, seen.decode(errors="replace")


def test_wanted_follows_the_terminal_and_no_color() -> None:
    code = (
        "import sys\nfrom regflow.cli.progress import wanted\n"
        "print(wanted(False, False), wanted(True, False), wanted(False, True))"
    )
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert run([sys.executable, "-c", code], base, tty=True)[1] == "True False False\n"
    assert run([sys.executable, "-c", code], base, tty=False)[1] == "False False False\n"
    no_color = {**base, "NO_COLOR": "1"}
    assert run([sys.executable, "-c", code], no_color, tty=True)[1] == "False False False\n"


@pytest.mark.slow
def test_progress_on_a_terminal_and_nowhere_else(prefect_harness: str, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    base["PREFECT_API_URL"] = prefect_harness

    def train(name: str, extra: list[str], tty: bool) -> tuple[int, str, str]:
        env = {**base, "REGFLOW_REGISTRY": str(tmp_path / name / "registry")}
        args = [sys.executable, "-m", "regflow", "train", SEED, "--target", "y"]
        return run([*args, "--out", str(tmp_path / name / "runs"), *extra], env, tty)

    cases = {
        "terminal": ([], True),
        "json": (["--json"], True),
        "quiet": (["--quiet"], True),
        "pipe": ([], False),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {k: pool.submit(train, k, *v) for k, v in cases.items()}
        done = {k: f.result() for k, f in futures.items()}
    for name, (code, stdout, stderr) in done.items():
        assert code == 0, (name, stderr)
        assert BAR not in stdout and "\x1b[" not in stdout, name
        if name == "terminal":
            assert [step for step in STEPS if step not in stderr] == [], stderr
        else:  # (log lines may name the steps; the display's own marks must be absent)
            assert BAR not in stderr and STARTING not in stderr, (name, stderr)
    terminal = done["terminal"][2]
    assert STARTING in terminal and BAR in terminal
    assert "4 rows, 22 B" in terminal  # ingest's finished line
    assert "loss" in terminal.split("train on cpu", 1)[1]
    # The answer on stdout is the same summary as without the display.
    assert done["terminal"][1].splitlines()[0] == done["pipe"][1].splitlines()[0]
    assert len(done["terminal"][1].splitlines()) == len(done["pipe"][1].splitlines())
    assert json.loads(done["json"][1].splitlines()[-1])["status"] == "completed"

    # predict, with the registry the terminal run filled: its steps, and the same answer.
    env = {**base, "REGFLOW_REGISTRY": str(tmp_path / "terminal" / "registry")}
    out = str(tmp_path / "scores.csv")
    args = [sys.executable, "-m", "regflow", "predict", SEED, "--model", "seed", "--out", out]
    code, stdout, stderr = run(args, env, tty=True)
    assert code == 0, stderr
    assert "load seed" in stderr and "ingest seed.csv" in stderr and "score and write" in stderr
    assert stdout.startswith("scored 4 rows with seed:1") and "\x1b[" not in stdout
