"""The Python API: `regflow.train` and `regflow.predict` run the real flows on a Prefect API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import regflow
from regflow.errors import GateStoppedError, InvalidInputError, UsageError
from regflow.registry import NotFoundError, Registry
from regflow.schemas.results import TrainOutcome, UnchangedOutcome

pytestmark = pytest.mark.usefixtures("prefect_harness")

TUTORIAL = {"x": [1.0, 2.0, 3.0, 3.5], "y": [2.0, 4.0, 6.0, 7.0]}


@pytest.fixture
def where(tmp_path: Path) -> dict[str, str]:
    return {"registry": str(tmp_path / "registry"), "out": str(tmp_path / "runs")}


def _versions(registry: str, name: str) -> list[int]:
    with Registry.open(registry, create=False) as reg:
        return [v.version for v in reg.list_versions(name)]


def test_import_regflow_loads_neither_torch_nor_prefect() -> None:
    # The API's names too: Prefect loads only when a run starts, after regflow's settings.
    code = (
        "import sys, regflow; from regflow import train, predict; "
        "print(sorted(m for m in ('torch', 'prefect') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # The names load on first use.
    assert regflow.train.__module__ == "regflow.api"
    assert regflow.Registry is Registry
    with pytest.raises(AttributeError, match="no attribute 'bogus'"):
        _ = regflow.bogus  # type: ignore[attr-defined]


def test_tutorial_frame_trains_then_is_unchanged(
    seed_csv: Path, where: dict[str, str], tmp_path: Path
) -> None:
    frame = pd.DataFrame(TUTORIAL)
    first = regflow.train(frame, target="y", model="seed", preset="seed", **where)
    assert isinstance(first, TrainOutcome) and first.status == "completed"
    assert first.model_ref == "seed:1" and first.promoted
    assert first.training.optimizer == "sgd" and first.training.epochs_run == 100
    # The tutorial's SGD lands near, not on, the least-squares line y = 2x...
    predicted = [row["predicted"] for row in first.predictions_preview]
    np.testing.assert_allclose(predicted, [2, 4, 6, 7], atol=0.6)
    # ...exactly where the same run on the tutorial's CSV file lands.
    elsewhere = {"registry": str(tmp_path / "other"), "out": str(tmp_path / "other-runs")}
    from_file = regflow.train(seed_csv, "y", preset="seed", **elsewhere)
    assert isinstance(from_file, TrainOutcome)
    assert first.training.coefficients == from_file.training.coefficients
    assert first.data_sha256 != from_file.data_sha256  # Parquet bytes, not the CSV's
    card = json.loads(Path(first.paths.card).read_text())
    assert card["data"]["source"] == "<pandas.DataFrame>" and card["data"]["format"] == "parquet"
    assert card["parameters"]["data_name"] == "<pandas.DataFrame>"
    assert not Path(card["parameters"]["data"]).exists()  # the temporary copy is gone

    # The same rows under another index: the same Parquet bytes, so nothing new to register.
    again = regflow.train(frame.set_axis([7, 8, 9, 10]), "y", model="seed", preset="seed", **where)
    assert isinstance(again, UnchangedOutcome) and again.status == "unchanged"
    assert again.model_ref == "seed:1" and again.data_sha256 == first.data_sha256
    changed = frame.assign(y=[2.0, 4.0, 6.0, 7.5])  # the listing's misprint
    assert regflow.train(changed, "y", model="seed", preset="seed", **where).status == "completed"
    assert _versions(where["registry"], "seed") == [1, 2]


def test_a_pyarrow_table_with_a_name(where: dict[str, str]) -> None:
    table = pa.table({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "y": [3.0, 5.1, 6.9, 9.0, 11.0]})
    outcome = regflow.train(table, "y", model="arrow", data_name="weekly.parquet", **where)
    assert isinstance(outcome, TrainOutcome) and outcome.features == ["a"]
    with Registry.open(where["registry"], create=False) as reg:
        assert reg.resolve("arrow@champion").lineage["data"]["source"] == "weekly.parquet"


def test_a_path_trains_with_the_file_name_as_model(seed_csv: Path, where: dict[str, str]) -> None:
    outcome = regflow.train(seed_csv, "y", features=["x"], epochs=500, **where)
    assert isinstance(outcome, TrainOutcome)
    assert outcome.model == "seed" and outcome.registry == where["registry"]
    np.testing.assert_allclose(
        [row["predicted"] for row in outcome.predictions_preview], [2, 4, 6, 7], atol=1e-3
    )


def test_a_missing_column_is_invalid_input(where: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        regflow.train(pd.DataFrame(TUTORIAL), "price", model="seed", **where)
    err = caught.value
    assert err.exit_code == 2 and err.flow_run_id
    assert err.source == "<pandas.DataFrame>" and str(err).startswith("<pandas.DataFrame>: ")
    assert [(p.check, p.column) for p in err.problems] == [("column_present", "price")]
    assert not Path(where["registry"]).exists()  # nothing was registered


def test_a_weak_relationship_is_gated(where: dict[str, str]) -> None:
    rng = np.random.default_rng(0)
    noise = pd.DataFrame({"x": rng.normal(size=60), "y": rng.normal(size=60)})
    with pytest.raises(GateStoppedError) as caught:
        regflow.train(noise, "y", model="noise", **where)
    assert caught.value.exit_code == 3 and caught.value.flow_run_id
    assert caught.value.report.passed is False


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"lr": -1.0}, "lr: input should be greater than 0"),
        ({"bogus": 1}, "bogus: unknown setting"),
        ({"preset": "fast"}, "preset: input should be 'default' or 'seed'"),
        ({"data_name": ""}, "data_name: string should have at least 1 character"),
    ],
)
def test_bad_options_are_usage_errors_before_any_run(
    options: dict[str, object], named: str, where: dict[str, str]
) -> None:
    with pytest.raises(UsageError) as caught:
        regflow.train(pd.DataFrame(TUTORIAL), "y", model="seed", **where, **options)
    assert caught.value.exit_code == 2 and named in str(caught.value)
    assert caught.value.flow_run_id is None


def test_in_memory_data_needs_a_model_name_and_a_known_type() -> None:
    with pytest.raises(UsageError, match="model: name the model for in-memory data"):
        regflow.train(pd.DataFrame(TUTORIAL), "y")
    with pytest.raises(UsageError, match="model: name the model for in-memory data"):
        regflow.predict(pd.DataFrame(TUTORIAL))
    with pytest.raises(TypeError, match="not ndarray"):
        regflow.train(np.ones((4, 2)), "y", model="m")  # type: ignore[arg-type]


def test_duplicate_column_names_are_invalid_input(where: dict[str, str]) -> None:
    frame = pd.DataFrame([[1.0, 2.0, 3.0]] * 4, columns=["x", "x", "y"])
    with pytest.raises(InvalidInputError) as caught:
        regflow.train(frame, "y", model="dupes", **where)
    assert [(p.check, p.column) for p in caught.value.problems] == [("unique_column_names", "x")]


def test_predict_returns_the_scores_with_the_frame_index(where: dict[str, str]) -> None:
    regflow.train(pd.DataFrame(TUTORIAL), "y", model="seed", **where)
    new = pd.DataFrame({"x": [4.0, 5.0], "note": ["a", "b"]}, index=["p", "q"])
    scores = regflow.predict(new, model="seed@champion", registry=where["registry"])
    assert list(scores.columns) == ["x", "note", "predicted", "model_version", "model_ref"]
    assert list(scores.index) == ["p", "q"] and list(scores["note"]) == ["a", "b"]
    np.testing.assert_allclose(scores["predicted"], [8.0, 10.0], atol=1e-3)
    assert set(scores["model_ref"]) == {"seed:1"}
    summary = scores.attrs["regflow"]
    assert summary["flow_run_id"] and summary["data"] == "<pandas.DataFrame>"
    assert summary["status"] == "ok" and summary["monitoring"] is None  # no target column


def test_predict_with_the_target_monitors(seed_csv: Path, where: dict[str, str]) -> None:
    regflow.train(seed_csv, "y", **where)
    scores = regflow.predict(seed_csv, registry=where["registry"])  # seed@champion by default
    assert scores.attrs["regflow"]["model"]["ref"] == "seed:1"
    assert scores.attrs["regflow"]["monitoring"]["rows_labelled"] == 4
    with Registry.open(where["registry"], create=False) as reg:
        assert len(reg.list_monitoring("seed")) == 1


def test_predict_failures_raise_typed_errors(where: dict[str, str]) -> None:
    regflow.train(pd.DataFrame(TUTORIAL), "y", model="seed", **where)
    with pytest.raises(InvalidInputError) as caught:
        regflow.predict(pd.DataFrame({"z": [1.0]}), "seed", registry=where["registry"])
    assert caught.value.exit_code == 2 and caught.value.source == "<pandas.DataFrame>"
    with pytest.raises(NotFoundError):
        regflow.predict(pd.DataFrame(TUTORIAL), "absent@champion", registry=where["registry"])
    with pytest.raises(UsageError, match="out: predict returns the scores"):
        regflow.predict(pd.DataFrame(TUTORIAL), "seed", out="x.csv")
    with pytest.raises(UsageError, match="max_psi"):
        regflow.predict(pd.DataFrame(TUTORIAL), "seed", max_psi=-1)
