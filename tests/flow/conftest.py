"""Fixtures shared by the flow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def cluster_address() -> Iterator[str]:
    """A real LocalCluster of two single-threaded worker processes, as the engine's own
    LocalCluster would have on two cores; one per test module."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        yield cluster.scheduler_address
