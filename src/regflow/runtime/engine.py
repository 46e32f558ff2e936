"""Where a run's data is processed: in this process (`local`) or on a Dask cluster (`dask`).

`dask` uses dask.distributed as it is: a `LocalCluster` of single-threaded worker processes
(one per usable core) started for the run and closed after it, or an existing scheduler named
by its address. Each pass of the partitioned pipeline maps one plain function over the files;
the scheduler places, retries and, when a worker dies, recomputes those calls.

Prefect's own integration (prefect-dask's DaskTaskRunner) would make each partition a Prefect
task run: hundreds of task runs per pass, each with API round trips, for work that takes
milliseconds per file. The run's steps stay Prefect tasks here; partitions are Dask calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from regflow.errors import UsageError
from regflow.runtime import early_cluster
from regflow.runtime.cores import usable_cores

Engine = Literal["auto", "local", "dask"]
_T = TypeVar("_T")

# `auto` chooses dask when the table would take more than this share of the machine's memory.
MEMORY_SHARE = 0.25
# An unreachable scheduler is reported within 15 s (the bound), connection included.
CONNECT_TIMEOUT_S = 10
ADDRESS_HELP = "a scheduler address such as tcp://host:8786"
# The LocalCluster's workers' environment. Dask's default sets MALLOC_TRIM_THRESHOLD_ to
# 64 KiB, which hands every freed column (8 MB a million rows) back to the kernel, so every
# file's arrays are page-faulted in afresh: the passes took a third more CPU. Here glibc
# keeps up to 256 MiB of freed memory for reuse (a worker holds one file's arrays at a time),
# and so does Arrow's allocator (mimalloc purged freed pages after 10 ms: each file's read
# buffers were faulted in afresh); BLAS stays single-threaded, one worker per core, as in
# dask's default.
_MALLOC_KEEP = str(256 << 20)
WORKER_ENVIRON = {
    "MALLOC_TRIM_THRESHOLD_": _MALLOC_KEEP,
    "MALLOC_MMAP_THRESHOLD_": _MALLOC_KEEP,
    "MIMALLOC_PURGE_DELAY": "-1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
WORKER_PRELOAD = "regflow.partitioned.work"
PROFILE_INTERVAL = "50ms"


def machine_memory() -> int:
    """Bytes of physical memory (os.sysconf: no extra dependency, Linux and macOS)."""
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def choose_engine(
    engine: Engine, *, multi_file: bool, table_bytes: int
) -> Literal["local", "dask"]:
    """`auto`: dask for a dataset of several files or one too big for a quarter of memory."""
    if engine != "auto":
        return engine
    if multi_file or table_bytes > MEMORY_SHARE * machine_memory():
        return "dask"
    return "local"


@dataclass(frozen=True)
class Cluster:
    """A connected client and what the run says about it."""

    client: Any  # distributed.Client (imported lazily: dask costs ~1 s to import)
    address: str
    dashboard: str | None
    started_here: bool


def _unreachable(address: str, reason: str) -> UsageError:
    return UsageError(
        f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s ({reason}); "
        f"check --dask-address ({ADDRESS_HELP}) and that `dask scheduler` runs there",
        check="dask_address",
    )


@contextlib.contextmanager
def dask_cluster(address: str | None, logger: logging.Logger | Any) -> Iterator[Cluster]:
    """A client of the scheduler at `address`, or of a LocalCluster started (and closed) here."""
    # The scheduler of a LocalCluster lives in this process: its INFO lines (connections,
    # a line per released partition) would flood the run's log. Warnings (a worker lost)
    # still show. Imported first: importing distributed sets its logger's level.
    import distributed  # noqa: F401

    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with _connected(address, logger) as cluster:
            yield cluster
    finally:
        quiet.setLevel(level)


@contextlib.contextmanager
def _connected(address: str | None, logger: logging.Logger | Any) -> Iterator[Cluster]:
    from distributed import Client

    if address:
        yield from _existing(address, logger)
        return
    workers = usable_cores()
    early = early_cluster.take()  # started by `regflow train` while it loaded the pipeline
    client = None if early is None else _client_of(early, logger)
    if early is not None and client is not None:
        try:
            _started(logger, workers, early.dashboard)
            yield Cluster(client, early.address, early.dashboard, started_here=True)
        finally:
            client.close()
            early.stop()  # the helper closes it while this run finishes
        return
    with local_cluster(workers) as cluster:
        client = Client(cluster, set_as_default=False)
        try:
            _started(logger, workers, client.dashboard_link)
            yield Cluster(client, cluster.scheduler_address, client.dashboard_link, True)
        finally:
            client.close()


def _client_of(early: early_cluster.EarlyCluster, logger: logging.Logger | Any) -> Any:
    """A client of the early cluster; None (it is stopped) where it does not answer."""
    from distributed import Client

    try:
        return Client(early.address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        logger.warning("dask: the LocalCluster started early did not answer (%s)", err)
        early.stop()
        return None


def _existing(address: str, logger: logging.Logger | Any) -> Iterator[Cluster]:
    import dask
    from distributed import Client

    if "://" not in address:
        raise _unreachable(address, f"not an address: expected {ADDRESS_HELP}")
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": f"{CONNECT_TIMEOUT_S}s"}):
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise _unreachable(address, str(err) or type(err).__name__) from None
    try:
        logger.info("dask: connected to %s (%d workers)", address, _workers(client))
        yield Cluster(client, address, None, started_here=False)
    finally:
        client.close()


def _started(logger: logging.Logger | Any, workers: int, dashboard: str | None) -> None:
    logger.info(
        "dask: started a LocalCluster of %d single-threaded worker processes; dashboard %s",
        workers,
        dashboard,
    )


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A distributed.LocalCluster of `workers` single-threaded worker processes, closed after."""
    import dask
    from distributed import LocalCluster

    # Loopback only; port 0 picks a free dashboard port, so runs side by side do not collide.
    # Workers import what the passes run (pandas, pyarrow, pandera: ~0.7 s) as they start,
    # not in the run's first pass.
    # The dashboard's profiler samples every 50 ms instead of 10: the same Profile page, a
    # fifth of its cost (with the allocator setting above ~0.8 of the workers' 29 CPU-seconds
    # at 100M rows).
    settings = {
        "distributed.nanny.pre-spawn-environ": WORKER_ENVIRON,
        "distributed.worker.preload": [WORKER_PRELOAD],
        "distributed.worker.profile.interval": PROFILE_INTERVAL,
    }
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )
    try:
        yield cluster
    finally:
        cluster.close()


def _workers(client: Any) -> int:
    return len(client.scheduler_info().get("workers", {}))


def map_partitions(
    cluster: Cluster,
    work: Callable[..., _T],
    items: Sequence[Any],
    *args: Any,
    label: str,
    on_done: Callable[[int, int], None] | None = None,
) -> list[_T]:
    """work(item, *args) for every item on the cluster; results in the items' order.

    `on_done(done, total)` is called as calls finish (progress). The shared arguments are
    sent to the cluster once, not with every call.
    """
    from distributed import as_completed

    client = cluster.client
    shared = [client.scatter(arg, broadcast=True) if _is_large(arg) else arg for arg in args]
    futures = client.map(work, items, *[[a] * len(items) for a in shared], key=_keys(label, items))
    position = {future.key: i for i, future in enumerate(futures)}
    results: list[Any] = [None] * len(items)
    try:
        for done, future in enumerate(as_completed(futures, loop=client.loop), start=1):
            results[position[future.key]] = future.result()
            if on_done is not None:
                on_done(done, len(items))
    finally:
        client.cancel(futures)
    return results


def _keys(label: str, items: Sequence[Any]) -> list[str]:
    # Unique per call: the same pass run twice (a second flow run) must not reuse results.
    token = os.urandom(4).hex()
    return [f"{label}-{token}-{i}" for i in range(len(items))]


def _is_large(value: Any) -> bool:
    return hasattr(value, "nbytes") and int(value.nbytes) > 1 << 20


def table_bytes(data: str | Sequence[str]) -> int:
    """About how many bytes one local file takes in memory (0 where it cannot tell cheaply):
    Parquet from its footer (rows x columns x 8), CSV from its size (text ~ float64)."""
    if not isinstance(data, str) or "://" in data or not os.path.isfile(data):
        return 0
    if data.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(data).metadata
        except (OSError, ValueError):
            return 0  # ingest reports an unreadable file
        return int(meta.num_rows) * int(meta.num_columns) * 8
    return os.path.getsize(data)
