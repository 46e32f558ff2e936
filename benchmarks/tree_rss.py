"""Run a command and measure the memory of its whole process tree (a Dask run is several
processes: the client with the scheduler and nannies in it, and one worker process per core).

A thread polls the tree with psutil every SAMPLE_S seconds. Each process's peak is the
largest of its sampled RSS and its kernel high-water mark (VmHWM in /proc/PID/status, exact
up to the last poll before the process exits). The total is the largest sum of the RSS of
all processes sampled at the same moment: shared pages (libraries) count once per process,
as `ps` shows them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

import psutil

SAMPLE_S = 0.2


@dataclass
class ProcessPeak:
    pid: int
    role: str
    peak_rss: int


@dataclass
class TreeRun:
    returncode: int
    wall_s: float
    stdout: str
    stderr: str
    processes: list[ProcessPeak] = field(default_factory=list)
    total_peak_rss: int = 0
    samples: int = 0

    def failure(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-5:]
        return f"exit {self.returncode}: " + " | ".join(tail)


def _hwm_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


CLIENT = "client (the CLI: the flow)"
HELPER = "LocalCluster helper (scheduler, nannies)"
WORKER = "dask worker"
TRACKER = "multiprocessing resource tracker"
KNOWN_ROLES = (CLIENT, HELPER, WORKER, TRACKER)


def _parent(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def role_of(process: psutil.Process, root: int) -> str:
    """What a process of a regflow dask run is, from its command line."""
    if process.pid == root:
        return CLIENT
    try:
        command = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "exited"
    if "resource_tracker" in command:
        return TRACKER
    if "regflow.runtime.early_cluster" in command:
        # The CLI's child; a worker the helper has just forked shows the helper's command
        # line until it execs: not known yet, so the next poll classifies it.
        return HELPER if _parent(process) == root else "starting"
    if "multiprocessing" in command or "forkserver" in command:
        return WORKER
    return os.path.basename(process.name())


class _Sampler(threading.Thread):
    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop = threading.Event()
        self.peaks: dict[int, ProcessPeak] = {}
        self.total = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(SAMPLE_S)

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0
        for process in tree:
            try:
                rss = process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total += rss
            peak = self.peaks.get(process.pid)
            if peak is None:
                peak = self.peaks[process.pid] = ProcessPeak(process.pid, "", 0)
            if peak.role not in KNOWN_ROLES:  # a just-spawned worker's command line is not set
                peak.role = role_of(process, self.root)
            peak.peak_rss = max(peak.peak_rss, rss, _hwm_bytes(process.pid))
        self.total = max(self.total, total)
        self.samples += 1


def run_tree(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 3600.0,
) -> TreeRun:
    """Run argv to completion, polling its process tree; wall time is spawn to exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True
        )
        sampler = _Sampler(proc.pid)
        sampler.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        wall = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        return TreeRun(
            returncode=proc.returncode,
            wall_s=wall,
            stdout=out.read().decode("utf-8", errors="replace"),
            stderr=err.read().decode("utf-8", errors="replace"),
            processes=sorted(sampler.peaks.values(), key=lambda p: (p.role != CLIENT, p.pid)),
            total_peak_rss=sampler.total,
            samples=sampler.samples,
        )
