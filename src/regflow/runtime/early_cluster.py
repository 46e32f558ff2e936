"""The LocalCluster of a `regflow train` on the dask engine, started before the CLI loads the
pipeline.

Loading Prefect and torch keeps one core busy for about three seconds while the other idles;
a LocalCluster's scheduler and worker processes take about a second to start. `start`
launches them at once in a helper process (`python -m regflow.runtime.early_cluster`), and
the flow's dask_cluster adopts the cluster (`take`) instead of starting its own. A process
rather than a thread: a thread would import distributed's modules while the main thread
imports Prefect's, and Python's import locks do not make that safe.

The helper closes the cluster when its stdin closes: when the run is done with it (`stop`),
when the CLI ends without adopting it (`discard`: the run stopped first, or took its cluster
from the Prefect Variable), or when the CLI dies.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from dataclasses import dataclass

READY_TIMEOUT_S = 120.0  # as long as a LocalCluster may take on a busy machine
STOP_TIMEOUT_S = 30.0


@dataclass
class EarlyCluster:
    """The helper process, and the cluster's address once it has said so."""

    process: subprocess.Popen[str]
    address: str = ""
    dashboard: str | None = None

    def stop(self) -> None:
        """Ask the helper to close the cluster and exit (it does so while the run finishes)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def wait(self) -> None:
        self.stop()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_started: EarlyCluster | None = None  # started, not yet taken by a flow
_taken: list[EarlyCluster] = []  # taken: waited for when the CLI ends


def start(workers: int) -> None:
    """Start a LocalCluster of `workers` worker processes in a helper process (once)."""
    global _started
    if _started is not None:
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "regflow.runtime.early_cluster", str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    _started = EarlyCluster(process)


def take() -> EarlyCluster | None:
    """The started cluster, once it is ready; None where none was started or it failed to
    start (the caller then starts its own)."""
    global _started
    early, _started = _started, None
    if early is None:
        return None
    _taken.append(early)
    stdout = early.process.stdout
    assert stdout is not None
    ready, _, _ = select.select([stdout], [], [], READY_TIMEOUT_S)
    line = stdout.readline() if ready else ""
    try:
        said = json.loads(line)
    except json.JSONDecodeError:
        early.wait()
        return None
    early.address, early.dashboard = str(said["address"]), said.get("dashboard")
    return early


def discard() -> None:
    """Close a cluster no flow took, and wait for every helper to exit."""
    global _started
    if _started is not None:
        _taken.append(_started)
        _started = None
    while _taken:
        _taken.pop().wait()


def _serve(workers: int) -> None:
    from regflow.runtime.engine import local_cluster

    try:
        with local_cluster(workers) as cluster:
            said = {"address": cluster.scheduler_address, "dashboard": cluster.dashboard_link}
            print(json.dumps(said), flush=True)
            sys.stdin.read()  # until the CLI closes it, or dies
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: close quietly
        pass
    # Closed: nothing is left to flush, and the CLI waits for this exit. Tearing down the
    # interpreter (distributed, bokeh, tornado) took longer than closing the cluster.
    os._exit(0)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
