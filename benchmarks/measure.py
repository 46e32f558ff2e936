"""Run one contender in its own process: wall time measured inside it, peak RSS per process."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCH_RESULT "


# --- inside the child ---------------------------------------------------------------------


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (Linux >= 4.0) so setup does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: the whole process's peak, setup included
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def measured() -> Iterator[Measurement]:
    """Time the block; its peak RSS counts what is resident (inputs, imports) plus the block."""
    m = Measurement()
    reset_peak_rss()
    started = time.perf_counter()
    yield m
    m.seconds = time.perf_counter() - started
    m.peak_rss = peak_rss_bytes()


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()


# --- in the parent ------------------------------------------------------------------------


@dataclass
class ChildRun:
    argv: list[str]
    returncode: int
    wall_s: float  # spawn to exit
    peak_rss: int  # the child's own high-water mark (wait4 in benchmarks.spawn), whole process
    stdout: str
    stderr: str

    def result(self) -> dict[str, Any] | None:
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        return None

    def last_json_line(self) -> dict[str, Any] | None:
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return None
        return None

    def failure(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-5:]
        return f"exit {self.returncode}: " + " | ".join(tail)


def run_process(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 900.0
) -> ChildRun:
    """Run argv to completion through benchmarks.spawn: wall time and the child's own peak RSS."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        report = Path(scratch) / "spawn.json"
        spawner = [sys.executable, "-m", "benchmarks.spawn", str(report), "--", *argv]
        proc = subprocess.Popen(
            spawner, stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the spawner's session: the contender goes with it
            proc.wait()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", errors="replace")
        stderr = err.read().decode("utf-8", errors="replace")
        if not report.exists():
            return ChildRun(argv, proc.returncode or -9, float(timeout), 0, stdout, stderr)
        spawned = json.loads(report.read_text())
        return ChildRun(
            argv=argv,
            returncode=int(spawned["returncode"]),
            wall_s=float(spawned["wall_s"]),
            peak_rss=int(spawned["maxrss_kib"]) * 1024,
            stdout=stdout,
            stderr=stderr,
        )


def run_contender(
    name: str, spec: dict[str, Any], *, env: dict[str, str] | None = None, timeout: float = 900.0
) -> ChildRun:
    """`python -m benchmarks.child NAME SPEC` in a fresh interpreter."""
    argv = [sys.executable, "-m", "benchmarks.child", name, json.dumps(spec)]
    return run_process(argv, env=env, timeout=timeout)
