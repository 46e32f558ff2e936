"""Hashing a dataset ahead of its run (regflow.io.hashing.settled_digest and the early
cluster's HASHED_AHEAD): a digest is only taken of a settled file and only used while stat
says the file is the one hashed. Real files, a real helper process and LocalCluster."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client

from regflow.io import hashing
from regflow.io.hashing import settled_digest, settled_digest_yielding, sha256_file
from regflow.runtime import early_cluster


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    early_cluster.discard()


def _settled_parquet_files(folder: Path, count: int) -> list[str]:
    """Small Parquet files, returned once SETTLED_S has passed since they were written."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        path = folder / f"part-{i}.parquet"
        pq.write_table(pa.table({"x": rng.normal(size=50), "y": rng.normal(size=50)}), path)
        paths.append(str(path))
    time.sleep(hashing.SETTLED_S + 0.2)
    return paths


def test_a_digest_needs_a_settled_file_and_holds_while_it_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"regression" * 1000)
    assert settled_digest(str(path)) is None  # changed just now: may still be written
    assert settled_digest(str(tmp_path / "missing.bin")) is None
    monkeypatch.setattr(hashing, "SETTLED_S", 0.0)
    digest = settled_digest(str(path))
    assert digest is not None
    assert (digest.sha256, digest.size) == sha256_file(str(path))
    assert digest.holds(str(path))
    assert settled_digest_yielding(str(path)) == digest  # the same, on a thread of its own
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # same bytes, touched
    assert not digest.holds(str(path))
    assert not digest.holds(str(tmp_path / "missing.bin"))


def test_the_early_cluster_hashes_a_parquet_dataset_while_the_cli_loads(tmp_path: Path) -> None:
    paths = _settled_parquet_files(tmp_path / "parts", 3)
    early_cluster.start(2, str(tmp_path / "parts"))
    early = early_cluster.take()
    assert early is not None
    with Client(early.address, set_as_default=False) as client:
        digests = early_cluster.hashed_ahead(client, paths)
        assert {p: (d.sha256, d.size) for p, d in digests.items()} == {
            p: sha256_file(p) for p in paths
        }
        assert early_cluster.hashed_ahead(client, paths) == {}  # taken once


def test_a_file_changed_after_it_was_hashed_is_left_to_the_validate_pass(tmp_path: Path) -> None:
    paths = _settled_parquet_files(tmp_path / "parts", 3)
    early_cluster.start(2, str(tmp_path / "parts"))
    early = early_cluster.take()
    assert early is not None
    with open(paths[1], "ab") as changed:
        changed.write(b"\0")
    with Client(early.address, set_as_default=False) as client:
        digests = early_cluster.hashed_ahead(client, [paths[0], paths[1]])  # not paths[2]
    assert sorted(digests) == [paths[0]]
    assert digests[paths[0]].sha256 == sha256_file(paths[0])[0]


@pytest.mark.parametrize("data", ["data/parts", "no-such-folder/*.parquet"])
def test_csv_or_a_glob_of_nothing_is_not_hashed_ahead(data: str) -> None:
    """CSV files are hashed by describe as they are parsed; a bad argument is the run's to
    name: the helper still starts its cluster."""
    early_cluster.start(1, data)
    early = early_cluster.take()
    assert early is not None
    with Client(early.address, set_as_default=False) as client:
        assert early_cluster.hashed_ahead(client, ["data/parts/part-000.csv"]) == {}
