"""Helpers for the bad-input and fault tests: real CLI processes, registry and run-folder checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from regflow.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def registered_versions(registry: Path) -> int:
    """How many versions the registry at `registry` shows (0 when it was never created)."""
    if not (registry / "index.db").exists():
        return 0
    with Registry.open(registry, create=False) as reg:
        return sum(m.versions for m in reg.list_models())


def run_folders(out: Path) -> list[Path]:
    """Complete run folders under `out`: renamed into place, not a hidden .tmp-* folder."""
    found = out.glob("*/*/model.json") if out.exists() else []
    return [p.parent for p in found if not p.parent.name.startswith(".")]


def regflow(
    args: list[str], api_url: str, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run the real `regflow` command line in a new process against the harness's API."""
    full_env = {**os.environ, "PREFECT_API_URL": api_url, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "regflow.cli", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def read_terminal(leader: int, process: subprocess.Popen, timeout: float) -> bytes:
    """Everything `process` writes to the pseudo-terminal `leader` until it exits (or
    `timeout` seconds pass: then it is killed). Closes `leader`."""
    import select
    import time

    seen, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    return seen
