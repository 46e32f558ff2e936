"""The LocalCluster of a `regflow train` on the dask engine, started before the CLI loads the
pipeline.

Loading Prefect and torch keeps one core busy for about three seconds while the other idles;
a LocalCluster's scheduler and worker processes take about a second to start. `start`
launches them at once in a helper process (`python -m regflow.runtime.early_cluster`), and
the flow's dask_cluster adopts the cluster (`take`) instead of starting its own. A process
rather than a thread: a thread would import distributed's modules while the main thread
imports Prefect's, and Python's import locks do not make that safe.

While the CLI loads, the cluster also hashes the dataset's files when they are all local
Parquet files (Parquet is described from its footers: the hash is the only read that does
not wait for the run's settings), on threads of lower priority than the CLI's. The digests
are published on the scheduler (`HASHED_AHEAD`); the run's describe step takes those whose
files stat says are unchanged (`hashed_ahead`), and the validate pass hashes the rest.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from regflow.io.hashing import FileDigest

HASHED_AHEAD = "regflow-hashed-ahead"  # the published dataset: {path: future of a digest}
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


def start(workers: int, data: str | Sequence[str] = ()) -> None:
    """Start a LocalCluster of `workers` worker processes in a helper process (once), which
    hashes the files of `data` (the dataset argument) meanwhile, where they are local Parquet."""
    global _started
    if _started is not None:
        return
    sources = [data] if isinstance(data, str) else list(data)
    process = subprocess.Popen(
        [sys.executable, "-m", "regflow.runtime.early_cluster", str(workers), *sources],
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


def hashed_ahead(client: Any, paths: Sequence[str]) -> dict[str, FileDigest]:
    """The digests the early cluster took of these files, where stat says each file is still
    the one hashed; {} where it took none. Waits for those still being taken (the workers are
    busy with them either way); digests of other files are cancelled."""
    futures = client.get_dataset(HASHED_AHEAD, default=None)
    if not futures:
        return {}
    client.unpublish_dataset(HASHED_AHEAD)
    wanted = [p for p in paths if p in futures]
    client.cancel([f for p, f in futures.items() if p not in set(paths)])
    try:
        digests = client.gather([futures[p] for p in wanted])
    except Exception:  # a shortcut only: the validate pass hashes what this did not
        return {}
    return {p: d for p, d in zip(wanted, digests, strict=True) if d is not None and d.holds(p)}


def _hash_ahead(cluster: Any, sources: list[str]) -> Any:
    """Submit the hashing of the dataset's files (all local Parquet, else none) and publish
    the futures; the client that holds them, or None."""
    from regflow.io.dataset_files import expand_dataset
    from regflow.io.sources import detect_format, is_remote

    try:
        paths = expand_dataset(sources) if sources else []
        if not paths or any(is_remote(p) or detect_format(p) != "parquet" for p in paths):
            return None
    except Exception:  # the run itself names what is wrong with the data
        return None
    from distributed import Client

    from regflow.io.hashing import settled_digest_yielding

    client = Client(cluster, set_as_default=False)
    keys = [f"{HASHED_AHEAD}-{i}" for i in range(len(paths))]
    futures = client.map(settled_digest_yielding, paths, key=keys)
    client.publish_dataset(dict(zip(paths, futures, strict=True)), name=HASHED_AHEAD)
    return client


def _serve(workers: int, sources: list[str]) -> None:
    from regflow.runtime.engine import local_cluster

    try:
        with local_cluster(workers) as cluster:
            hashing = _hash_ahead(cluster, sources)  # published before the address is said
            said = {"address": cluster.scheduler_address, "dashboard": cluster.dashboard_link}
            print(json.dumps(said), flush=True)
            sys.stdin.read()  # until the CLI closes it, or dies
            if hashing is not None:
                hashing.close()
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: close quietly
        pass
    # Closed: nothing is left to flush, and the CLI waits for this exit. Tearing down the
    # interpreter (distributed, bokeh, tornado) took longer than closing the cluster.
    os._exit(0)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2:])
