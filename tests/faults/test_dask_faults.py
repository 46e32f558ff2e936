"""The dask engine when things go wrong: a worker killed mid-run, a bad or unreadable
partition, files that disagree, a glob that matches nothing, a scheduler that is not there.
Every failed run leaves no run folder and no version."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regflow.errors import InvalidInputError
from regflow.flows.training import train
from regflow.registry import Registry
from regflow.runtime.engine import CONNECT_TIMEOUT_S
from regflow.runtime.faults import KILL_MARKER_ENV, KILL_ONCE_ENV

pytestmark = pytest.mark.usefixtures("prefect_harness")

KILLED_PART = 7


@pytest.fixture(scope="module")
def killing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Two worker processes that SIGKILL themselves once, at partition 7's evaluation."""
    from distributed import LocalCluster

    marker = tmp_path_factory.mktemp("kill") / "killed"
    saved = {k: os.environ.get(k) for k in (KILL_ONCE_ENV, KILL_MARKER_ENV)}
    os.environ[KILL_ONCE_ENV] = f"dask:evaluate:{KILLED_PART}"
    os.environ[KILL_MARKER_ENV] = str(marker)
    try:  # worker processes inherit the environment when they start
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        )  # fmt: skip
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with cluster:
        yield cluster.scheduler_address, marker


def unused_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dataset(folder: Path, files: int = 12, rows: int = 60, seed: int = 5) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(files):
        x = rng.normal(size=rows)
        frame = pd.DataFrame({"x": x, "y": 1.5 * x - 2 + rng.normal(0, 0.3, rows)})
        frame.to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    return folder


def run(tmp_path: Path, data: str, **options: Any) -> Any:
    return train(
        data=data,
        target="y",
        model="faulty",
        engine="dask",
        dtype="float64",
        out=str(tmp_path / "runs"),
        registry=str(tmp_path / "registry"),
        return_state=True,
        **options,
    )


def assert_nothing_left(tmp_path: Path) -> None:
    assert not (tmp_path / "runs").exists()  # not even the folders the run created
    registry = tmp_path / "registry"
    if registry.exists():
        with Registry.open(str(registry)) as reg:
            assert reg.list_versions("faulty") == []


def test_a_worker_killed_mid_run_changes_nothing(
    tmp_path: Path, killing_cluster: tuple[str, Path]
) -> None:
    address, marker = killing_cluster
    data = dataset(tmp_path / "parts")
    killed = run(tmp_path, str(data), dask_address=address)
    assert killed.is_completed(), killed.message
    assert marker.exists()  # a worker did die, at partition 7's evaluation
    again = run(tmp_path, str(data), dask_address=address, force=True)
    assert again.is_completed(), again.message
    first, second = killed.result(), again.result()
    assert first.training.coefficients == second.training.coefficients
    assert first.evaluation.metrics == second.evaluation.metrics
    parts = sorted(Path(first.paths.predictions).glob("part-*.parquet"))
    assert len(parts) == 12  # the killed partition's part was written by the rerun


def expect_invalid(state: Any, *needles: str) -> InvalidInputError:
    assert state.is_failed()
    err = state.result(raise_on_failure=False)
    assert isinstance(err, InvalidInputError), err
    for needle in needles:
        assert needle in str(err), str(err)
    return err


def test_invalid_rows_in_two_files_are_one_report(tmp_path: Path) -> None:
    data = dataset(tmp_path / "parts", files=4)
    for i, row in ((1, 4), (3, 10)):
        path = data / f"part-{i:03d}.parquet"
        frame = pd.read_parquet(path)
        frame.loc[row, "x"] = np.inf
        frame.to_parquet(path, index=False)
    err = expect_invalid(run(tmp_path, str(data)), "part-001.parquet", "part-003.parquet")
    found = sorted((Path(p.file or "").name, p.column, p.check, p.rows) for p in err.problems)
    assert found == [
        ("part-001.parquet", "x", "finite", [5]),
        ("part-003.parquet", "x", "finite", [11]),
    ]
    assert_nothing_left(tmp_path)


def test_a_stray_text_cell_in_one_csv_file_names_its_row(tmp_path: Path) -> None:
    """CSV has no declared types: "twelve" in one file makes that file's column text, but the
    column is still numbers, so validation names the row, as for a single file."""
    data = dataset(tmp_path / "parquet", files=4)
    folder = tmp_path / "csv"
    folder.mkdir()
    for i, part in enumerate(sorted(data.glob("*.parquet"))):
        frame = pd.read_parquet(part).astype({"x": object})
        if i == 2:
            frame.loc[7, "x"] = "twelve"
        frame.to_csv(folder / f"part-{i:03d}.csv", index=False)
    err = expect_invalid(run(tmp_path, str(folder)), "part-002.csv", "twelve")
    found = [(Path(p.file or "").name, p.column, p.check, p.rows) for p in err.problems]
    assert found == [("part-002.csv", "x", "coerce_dtype", [8])]
    assert_nothing_left(tmp_path)


def test_an_unreadable_partition_names_the_file(tmp_path: Path) -> None:
    data = dataset(tmp_path / "parts", files=4)
    (data / "part-002.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    expect_invalid(run(tmp_path, str(data)), "part-002.parquet")
    assert_nothing_left(tmp_path)


def test_files_that_disagree_name_the_file(tmp_path: Path) -> None:
    data = dataset(tmp_path / "parts", files=4)
    frame = pd.read_parquet(data / "part-003.parquet").rename(columns={"x": "x2"})
    frame.to_parquet(data / "part-003.parquet", index=False)
    err = expect_invalid(run(tmp_path, str(data)), "part-003.parquet")
    assert {p.check for p in err.problems} == {"same_schema"}
    assert_nothing_left(tmp_path)


def test_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    err = expect_invalid(run(tmp_path, str(tmp_path / "none-*.parquet")), "none-*.parquet")
    assert {p.check for p in err.problems} == {"dataset_files"}
    assert_nothing_left(tmp_path)


def test_an_unreachable_scheduler_is_named_within_15_s(tmp_path: Path) -> None:
    data = dataset(tmp_path / "parts", files=2)
    address = f"tcp://127.0.0.1:{unused_port()}"
    err = expect_invalid(run(tmp_path, str(data), dask_address=address), address)
    assert {p.check for p in err.problems} == {"dask_address"}
    # The bound is the connect timeout the message states (no wall-clock assertion here).
    assert CONNECT_TIMEOUT_S < 15 and f"within {CONNECT_TIMEOUT_S} s" in str(err)
    assert_nothing_left(tmp_path)


def test_a_prefect_variable_names_the_scheduler(tmp_path: Path) -> None:
    """Without --dask-address, the Variable regflow_dask_address names the cluster."""
    from prefect.variables import Variable

    data = dataset(tmp_path / "parts", files=2)
    address = f"tcp://127.0.0.1:{unused_port()}"
    Variable.set("regflow_dask_address", address, overwrite=True)
    try:
        err = expect_invalid(run(tmp_path, str(data)), address)
    finally:
        Variable.unset("regflow_dask_address")
    assert {p.check for p in err.problems} == {"dask_address"}
