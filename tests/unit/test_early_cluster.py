"""The LocalCluster `regflow train` starts while it loads (regflow.runtime.early_cluster): a
real helper process with a real LocalCluster, adopted, discarded, or failed."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import dask
import pytest
from distributed import Client

from regflow.runtime import early_cluster
from regflow.runtime.engine import dask_cluster


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    early_cluster.discard()


def test_taken_cluster_runs_work_and_its_helper_exits() -> None:
    early_cluster.start(2)
    early = early_cluster.take()
    assert early is not None and early.address.startswith("tcp://127.0.0.1:")
    with Client(early.address, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.submit(sum, [1, 2, 3]).result() == 6
    assert early_cluster.take() is None  # taken once
    early_cluster.discard()
    assert early.process.returncode == 0


def test_the_flow_adopts_it_and_closes_it() -> None:
    """dask_cluster with no address uses the early cluster (started here: closed after)."""
    early_cluster.start(2)
    with dask_cluster(None, logging.getLogger("test")) as cluster:
        assert cluster.started_here
        assert cluster.client.submit(pow, 2, 10).result() == 1024
        helper = early_cluster._taken[0].process
    early_cluster.discard()
    assert helper.returncode == 0


def test_one_no_flow_took_is_closed() -> None:
    early_cluster.start(1)
    helper = early_cluster._started.process if early_cluster._started else None
    assert helper is not None
    early_cluster.discard()
    assert helper.returncode == 0 and early_cluster.take() is None


def test_a_helper_that_died_is_not_taken() -> None:
    """The caller then starts its own LocalCluster."""
    early_cluster.start(1)
    assert early_cluster._started is not None
    early_cluster._started.process.kill()
    assert early_cluster.take() is None


def test_one_that_stopped_answering_is_dropped() -> None:
    """dask_cluster then starts a LocalCluster of its own (the connection fails, not the run)."""
    from regflow.runtime.engine import _client_of

    early_cluster.start(1)
    early = early_cluster.take()
    assert early is not None
    early.process.kill()
    early.process.wait()
    assert _client_of(early, logging.getLogger("test")) is None


ALLOCATOR = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MIMALLOC_PURGE_DELAY")


def test_its_workers_keep_freed_memory_and_profile_every_50_ms() -> None:
    from regflow.runtime.engine import PROFILE_INTERVAL, WORKER_ENVIRON

    early_cluster.start(2)
    with dask_cluster(None, logging.getLogger("test")) as cluster:
        # Functions the workers import by name (this test module is not on their path).
        environ = {name: cluster.client.run(os.getenv, name) for name in ALLOCATOR}
        interval = cluster.client.run(dask.config.get, "distributed.worker.profile.interval")
    for name, by_worker in environ.items():
        assert list(by_worker.values()) == [WORKER_ENVIRON[name]] * 2
    assert list(interval.values()) == [PROFILE_INTERVAL] * 2
