"""A Prefect server killed mid-run: the CLI ends promptly with one message, leaving nothing.

A real `prefect server start` on loopback (regflow.deployments.local_server), a real
`regflow train` process long enough to be mid-training, and SIGKILL for the server's whole
process group, as a crash or an OOM kill would do it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_checks import REPO, last_json, registered_versions, run_folders

from regflow.deployments.local_server import local_server

pytestmark = pytest.mark.slow
WAIT_FOR_TRAINING_S = 240  # server start, imports and ingest on a busy 2-core machine


def test_a_killed_server_ends_the_run_with_one_message(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200_000, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=x @ [1.0, 2.0, 3.0])
    data = tmp_path / "long.parquet"
    frame.to_parquet(data)
    registry, out = tmp_path / "registry", tmp_path / "runs"
    # The tutorial's SGD for a million epochs: still training when the server goes away.
    args = ["train", str(data), "--target", "y", "--preset", "seed", "--epochs", "1000000"]
    args += ["--registry", str(registry), "--out", str(out), "--json"]
    with local_server() as server:
        env = server.env({"PREFECT_LOGGING_LEVEL": "INFO"})
        process = subprocess.Popen(
            [sys.executable, "-m", "regflow.cli", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        seen = []
        deadline = time.monotonic() + WAIT_FOR_TRAINING_S
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            seen.append(line)
            if "training on" in line or not line:
                break
        assert "training on" in seen[-1], "".join(seen)[-3000:]
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        stdout, stderr = process.communicate(timeout=120)
        took = time.monotonic() - killed_at
    assert process.returncode == 1, stderr[-3000:]
    assert took < 60, f"the CLI took {took:.0f} s to give up"  # a bound, not a benchmark
    assert "Traceback" not in stderr
    assert stderr.count("regflow: ") == 1 and "stopped answering" in stderr
    assert last_json(stdout)["error"] == "ServerUnavailable"
    assert run_folders(out) == [] and registered_versions(registry) == 0
