"""--on-invalid quarantine: invalid rows are set aside and listed, never dropped silently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_checks import registered_versions, run_folders

from regflow.errors import InvalidInputError
from regflow.flows.training import train
from regflow.registry import Registry
from regflow.schemas.frames import LoadedData
from regflow.tasks.validate import validate_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")

# (1-based data row, column, check, value) of every failure planted below.
# A formula gets a quote in quarantine.csv so that no spreadsheet runs it; "-inf" is a number.
PLANTED = {
    (4, "x", "coerce_dtype", "'=1+2"),
    (11, "y", "not_nullable", "nan"),
    (21, "x", "finite", "-inf"),
    (30, "x", "coerce_dtype", "n/a?"),  # one row failing two checks is listed twice
    (30, "y", "within_float32_range", "1e+39"),
}


def _dirty_csv(path: Path, rows: int = 60) -> Path:
    rng = np.random.default_rng(4)
    x = rng.normal(size=rows)
    frame = pd.DataFrame({"x": x.astype(object), "y": 3 * x + 1 + rng.normal(0, 0.2, rows)})
    frame.loc[3, "x"] = "=1+2"
    frame.loc[10, "y"] = np.nan
    frame.loc[20, "x"] = -np.inf
    frame.loc[29, ["x", "y"]] = ["n/a?", 1e39]
    frame.to_csv(path, index=False)
    return path


def _loaded(frame: pd.DataFrame) -> LoadedData:
    return LoadedData(frame, "f.csv", "csv", "0" * 64, 0)


def test_quarantine_trains_on_the_rest_and_lists_every_rejected_row(tmp_path: Path) -> None:
    data = _dirty_csv(tmp_path / "dirty.csv")
    registry = tmp_path / "registry"
    state = train(
        data=str(data),
        target="y",
        out=str(tmp_path / "runs"),
        registry=str(registry),
        on_invalid="quarantine",
        max_invalid_fraction=0.1,
        return_state=True,
    )
    assert state.is_completed(), state.message
    outcome = state.result()
    q = outcome.quarantine
    assert (q.rows_read, q.rows_rejected, q.rows_used) == (60, 4, 56)
    assert q.fraction == pytest.approx(4 / 60) and q.max_invalid_fraction == 0.1
    assert q.by_check == {
        "coerce_dtype": 2,
        "not_nullable": 1,
        "finite": 1,
        "within_float32_range": 1,
    }

    listed = pd.read_csv(outcome.paths.quarantine, dtype={"value": str}, keep_default_na=False)
    assert list(listed.columns) == ["row", "column", "check", "value"]
    assert set(listed.itertuples(index=False, name=None)) == PLANTED
    # Nothing vanished: every row read was either used or listed.
    predictions = pd.read_parquet(outcome.paths.predictions)
    assert len(predictions) == q.rows_used == q.rows_read - listed["row"].nunique()
    assert np.isfinite(predictions["true"]).all()

    card = json.loads(Path(outcome.paths.card).read_text())
    assert card["data"]["rows"] == 56 and card["data"]["rows_quarantined"] == 4
    assert card["parameters"]["on_invalid"] == "quarantine"
    assert "quarantine.csv" in card["files"]
    with Registry.open(registry) as reg:  # the list travels with the model, hashed
        mv = reg.resolve(outcome.model_ref)
        assert "quarantine.csv" in reg.store.list_files(mv.name, mv.version)
        assert reg.verify() == []

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        (report,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["dirty-report"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert "Quarantined rows" in report.data and "4 of 60 rows" in report.data


@pytest.mark.parametrize("fraction", [0.0, 0.05])
def test_above_the_fraction_the_run_stops_as_invalid(tmp_path: Path, fraction: float) -> None:
    data = _dirty_csv(tmp_path / "dirty.csv")
    registry = tmp_path / "registry"
    state = train(
        data=str(data),
        target="y",
        out=str(tmp_path / "runs"),
        registry=str(registry),
        on_invalid="quarantine",
        max_invalid_fraction=fraction,
        return_state=True,
    )
    error = state.result(raise_on_failure=False)
    assert state.name == "InvalidInput" and error.exit_code == 2
    checks = {(p.column, p.check) for p in error.problems}
    assert (None, "max_invalid_fraction") in checks
    assert {("x", "coerce_dtype"), ("y", "not_nullable"), ("x", "finite")} <= checks
    assert "4 of 60 rows (6.7%)" in str(error)
    assert registered_versions(registry) == 0 and run_folders(tmp_path / "runs") == []


def test_table_checks_still_fail_in_quarantine_mode() -> None:
    def screen(frame: pd.DataFrame, features: list[str] | None = None) -> InvalidInputError:
        with pytest.raises(InvalidInputError) as info:
            validate_dataset(_loaded(frame), "y", features, "quarantine", 0.9)
        return info.value

    too_few = screen(pd.DataFrame({"x": [1, "a", 2, "b"], "y": [1.0, 2.0, 3.0, 4.0]}))
    assert [p.check for p in too_few.problems] == ["at_least_3_rows"]
    assert "found 2 after quarantining 2 rows" in str(too_few)
    constant = screen(pd.DataFrame({"x": [1, 1, "a", 1], "y": [1.0, 2.0, 3.0, 4.0]}))
    assert {(p.column, p.check) for p in constant.problems} == {("x", "not_constant")}
    missing = screen(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 4.0]}), ["x", "w"])
    assert {(p.column, p.check) for p in missing.problems} == {("w", "column_present")}


def test_fail_mode_ignores_the_fraction_and_clean_data_quarantines_nothing() -> None:
    dirty = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 5.0]})
    with pytest.raises(InvalidInputError, match="not_nullable"):
        validate_dataset(_loaded(dirty), "y", None, "fail", 0.9)
    clean = validate_dataset(_loaded(dirty.dropna()), "y", None, "quarantine", 0.0)
    assert clean.rows_rejected == 0 and clean.rejected is not None and clean.rejected.empty
    assert len(clean.frame) == clean.rows_read == 3
