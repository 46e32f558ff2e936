"""The dask engine's gate: its diagnostics ride the evaluation pass when the moments vouch
for the fit, a stop is decided on a pass of the gate's own, and either way the report is the
local engine's. Also the passes' progress artifacts, as the Prefect UI shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterType,
    FlowRunFilter,
    FlowRunFilterId,
)

from regflow.errors import GateStoppedError
from regflow.flows.training import train
from regflow.registry import Registry
from regflow.registry.errors import NotFoundError

pytestmark = pytest.mark.usefixtures("prefect_harness")

FILES = 12


def write_parts(folder: Path, frame: pd.DataFrame) -> Path:
    """The frame cut into FILES Parquet files, and the whole frame as one file."""
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), FILES)):
        frame.iloc[part].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    whole = folder.parent / f"{folder.name}.parquet"
    frame.to_parquet(whole, index=False)
    return whole


def train_state(tmp_path: Path, data: Path, engine: str, **options: Any) -> Any:
    return train(
        data=str(data), target="y", model="m", engine=engine, dtype="float64",
        out=str(tmp_path / f"runs-{engine}"), registry=str(tmp_path / f"registry-{engine}"),
        return_state=True, **options,
    )  # fmt: skip


def task_names(state: Any) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    return sorted(r.name.rsplit("-", 1)[0] for r in runs)


def progress(state: Any) -> dict[str, float]:
    """The run's progress artifacts: description -> the last progress (percent)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            ),
            artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"])),
        )
    return {str(a.description): float(a.data) for a in found}  # type: ignore[arg-type]


def curved(rows: int = 6000) -> pd.DataFrame:
    """A squared term the line misses: a curvature (RESET) warning."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(2.0, 1.0, rows)})
    frame["y"] = (
        3.0 * frame.a - 2.0 * frame.b + 2.0 * (frame.b - 2.0) ** 2 + rng.normal(0, 0.5, rows)
    )
    return frame


def a_far_row(rows: int = 6000) -> pd.DataFrame:
    """One row far out in `a`, in the eighth file: leverage and Cook's distance warnings."""
    rng = np.random.default_rng(12)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(2.0, 1.0, rows)})
    frame.loc[4321, "a"] = 4000.0
    frame["y"] = 3.0 * frame.a - 2.0 * frame.b + rng.normal(0, 0.5, rows)
    frame.loc[4321, "y"] += 30.0
    return frame


@pytest.mark.parametrize(
    ("make", "kinds"),
    [
        (curved, ["curvature"]),
        (a_far_row, ["influential_point", "influential_point", "rank_disagreement"]),
    ],
)
def test_diagnostics_from_the_evaluation_pass_equal_the_local_gates(
    tmp_path: Path, cluster_address: str, make: Any, kinds: list[str]
) -> None:
    whole = write_parts(tmp_path / "parts", make())
    local = train_state(tmp_path, whole, "local")
    dask = train_state(tmp_path, tmp_path / "parts", "dask", dask_address=cluster_address)
    assert local.is_completed() and dask.is_completed(), (local.message, dask.message)
    mine, theirs = dask.result().gate, local.result().gate
    assert [w.kind for w in theirs.warnings] == kinds
    assert [w.message for w in mine.warnings] == [w.message for w in theirs.warnings]
    if make is a_far_row:
        assert "row 4322 has leverage" in theirs.warnings[0].message
    assert abs(mine.multiple_r - theirs.multiple_r) <= 1e-10 * theirs.multiple_r
    for a, b in zip(mine.warnings, theirs.warnings, strict=True):
        assert abs(a.value - b.value) <= 1e-8 * abs(b.value)
    # One pass fewer: no pass of the gate's own; its diagnostics came with the evaluation.
    assert "gate-diagnostics" in task_names(dask)
    shown = progress(dask)
    assert not any(label.startswith("gate:") for label in shown), shown
    for step in ("describe", "validate", "evaluate"):
        assert shown[f"{step}: partitions done of {FILES}"] == 100.0


def test_a_stop_is_decided_on_the_gates_own_pass(tmp_path: Path, cluster_address: str) -> None:
    rng = np.random.default_rng(5)
    noise = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    noise["y"] = rng.normal(size=3000)
    whole = write_parts(tmp_path / "noise", noise)
    local = train_state(tmp_path, whole, "local")
    dask = train_state(tmp_path, tmp_path / "noise", "dask", dask_address=cluster_address)
    assert local.is_failed() and dask.is_failed()
    assert dask.name == local.name == "WeakCorrelation"
    stopped = dask.result(raise_on_failure=False)
    assert isinstance(stopped, GateStoppedError)
    expected = local.result(raise_on_failure=False).report
    assert abs(stopped.report.multiple_r - expected.multiple_r) <= 1e-10 * expected.multiple_r
    assert stopped.report.reason == expected.reason
    assert "gate-diagnostics" not in task_names(dask)
    assert progress(dask)[f"gate: partitions done of {FILES}"] == 100.0
    assert not (tmp_path / "runs-dask").exists()  # nothing left behind
    with Registry.open(str(tmp_path / "registry-dask")) as reg, pytest.raises(NotFoundError):
        reg.list_versions("m")  # no version registered
