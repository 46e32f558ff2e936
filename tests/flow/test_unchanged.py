"""Unchanged input, no new version: the same data, settings and regflow register nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from regflow.flows.training import train
from regflow.registry import Registry
from regflow.schemas.results import TrainOutcome, UnchangedOutcome

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _train(data: Path, tmp_path: Path, **params: object) -> Any:
    state = train(
        data=str(data),
        target="y",
        out=str(tmp_path / "runs"),
        registry=str(tmp_path / "registry"),
        return_state=True,
        **params,
    )
    assert state.is_completed(), state.message
    return state.result()


@pytest.fixture
def linear_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    frame["y"] = 3 * frame.a - frame.b + rng.normal(0, 0.2, 80)
    path = tmp_path / "linear.csv"
    frame.to_csv(path, index=False)
    return path


def _task_states(flow_run_id: str) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs if r.state is not None}


def _model_events(name: str, flow_run_ids: set[str]) -> list[tuple[str, str]]:
    """(event name, flow run id) of the model's registered/promoted events from these runs."""
    with get_client(sync_client=True) as client:
        page = client.read_events(
            EventFilter(
                event=EventNameFilter(name=["regflow.model.registered", "regflow.model.promoted"]),
                resource=EventResourceFilter(id=[f"regflow.model.{name}"]),
            ),
            limit=50,
        )
    found = []
    for event in page.events:
        runs = {r.id.removeprefix("prefect.flow-run.") for r in event.related}
        found += [(event.event, run) for run in runs & flow_run_ids]
    return sorted(found)


def test_a_second_identical_run_registers_nothing_and_emits_nothing(
    linear_csv: Path, tmp_path: Path
) -> None:
    first = _train(linear_csv, tmp_path)
    assert isinstance(first, TrainOutcome) and first.model_ref == "linear:1"

    second = _train(linear_csv, tmp_path)
    assert isinstance(second, UnchangedOutcome)
    assert (second.status, second.model_version, second.model_ref) == ("unchanged", 1, "linear:1")
    assert second.aliases == ["champion"] and second.data_sha256 == first.data_sha256
    assert "linear:1 (@champion)" in second.reason
    # The lookup is a Prefect task: the first identical run asks the registry, the next one
    # (same inputs, no version since) is answered from Prefect's cache.
    assert _task_states(str(second.flow_run_id))["unchanged-check"] == "Completed"
    third = _train(linear_csv, tmp_path)
    assert isinstance(third, UnchangedOutcome) and third.model_ref == "linear:1"
    states = _task_states(str(third.flow_run_id))
    assert states["unchanged-check"] == "Cached"
    assert "train" not in states and "register" not in states  # nothing was trained

    # --force trains anyway: a new version, and a tie with the champion does not promote.
    forced = _train(linear_csv, tmp_path, force=True)
    assert isinstance(forced, TrainOutcome) and forced.model_ref == "linear:2"
    assert not forced.promoted and forced.promotion["rule"] == "tie"

    with Registry.open(tmp_path / "registry", create=False) as reg:
        assert [v.version for v in reg.list_versions("linear")] == [1, 2]
        assert reg.get_alias("linear", "champion") == 1
    assert len(list((tmp_path / "runs" / "linear").iterdir())) == 2  # no run folder either

    # Events go out in order: once the forced run's event is in, an unchanged run's would be.
    runs = {str(r.flow_run_id) for r in (first, second, third, forced)}
    deadline = time.monotonic() + 30
    while ("regflow.model.registered", str(forced.flow_run_id)) not in (
        events := _model_events("linear", runs)
    ):
        assert time.monotonic() < deadline, f"the forced run's event never arrived: {events}"
        time.sleep(0.5)
    assert events == sorted(
        [
            ("regflow.model.promoted", str(first.flow_run_id)),
            ("regflow.model.registered", str(first.flow_run_id)),
            ("regflow.model.registered", str(forced.flow_run_id)),
        ]
    )


def test_changed_data_or_settings_train_a_new_version(linear_csv: Path, tmp_path: Path) -> None:
    assert _train(linear_csv, tmp_path).model_ref == "linear:1"
    # Different settings that shape the model: a new version.
    other_seed = _train(linear_csv, tmp_path, seed=3)
    assert isinstance(other_seed, TrainOutcome) and other_seed.model_ref == "linear:2"
    # Settings that do not shape the model (promotion rules) do not count.
    same = _train(linear_csv, tmp_path, seed=3, min_improvement=0.1)
    assert isinstance(same, UnchangedOutcome) and same.model_ref == "linear:2"
    # One changed cell is different data.
    frame = pd.read_csv(linear_csv)
    frame.loc[0, "y"] += 1.0
    frame.to_csv(linear_csv, index=False)
    changed = _train(linear_csv, tmp_path, seed=3)
    assert isinstance(changed, TrainOutcome) and changed.model_ref == "linear:3"


def test_a_deleted_version_is_not_an_answer(linear_csv: Path, tmp_path: Path) -> None:
    _train(linear_csv, tmp_path)
    assert isinstance(_train(linear_csv, tmp_path), UnchangedOutcome)  # cached from here on
    with Registry.open(tmp_path / "registry") as reg:
        reg.remove_alias("linear", "champion", reason="test")  # aliased versions stay
        reg.delete("linear:1")
    again = _train(linear_csv, tmp_path)
    assert isinstance(again, TrainOutcome) and again.model_ref == "linear:2"


def test_version_files_are_stored_once(linear_csv: Path, tmp_path: Path) -> None:
    outcome = _train(linear_csv, tmp_path)
    with Registry.open(tmp_path / "registry", create=False) as reg:
        version = reg.resolve(outcome.model_ref)
        stored = Path(reg.store.location) / version.files
        assert reg.verify() == []
    run_dir = Path(outcome.paths.run_dir)
    total = 0
    for name in ("model.safetensors", "model.json", "predictions.parquet"):
        in_run, in_store = os.stat(run_dir / name), os.stat(stored / name)
        assert (in_run.st_dev, in_run.st_ino) == (in_store.st_dev, in_store.st_ino), name
        assert in_run.st_nlink == 2
        total += in_store.st_size
    files = [p for p in stored.rglob("*") if p.is_file()]
    assert version.size_bytes == sum(p.stat().st_size for p in files) > total
