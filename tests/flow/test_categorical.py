"""--categorical: one-hot encoded text columns through training, the card and scoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from run_checks import last_json
from typer.testing import CliRunner

import regflow
from regflow.cli import app
from regflow.errors import InvalidInputError
from regflow.schemas.frames import LoadedData
from regflow.tasks.validate import validate_dataset

runner = CliRunner()
EFFECTS = {"A": 0.0, "B": 3.0, "C": -1.0}  # A is the reference level (first sorted)


def _frame(n: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(list(EFFECTS), size=n)
    x = rng.normal(size=n)
    y = 2 * x + pd.Series(city).map(EFFECTS).to_numpy() + 1.0 + rng.normal(0, 0.05, n)
    notes = [f"note {i % 7}" for i in range(n)]
    return pd.DataFrame({"x": x, "city": city, "note": notes, "y": y})


def _cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"REGFLOW_DEBUG": ""})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trained(prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("categorical")
    data = folder / "cities.csv"
    _frame().to_csv(data, index=False)
    registry = folder / "registry"
    code, out, err = _cli(
        "train", str(data), "--target", "y", "--categorical", "city",
        "--registry", str(registry), "--out", str(folder / "runs"), "--json",
    )  # fmt: skip
    assert code == 0, err
    return {"folder": folder, "data": data, "registry": registry, "json": last_json(out)}


def test_training_recovers_the_level_effects(trained: dict[str, Any]) -> None:
    payload = trained["json"]
    weights = payload["coefficients"]["weights"]
    assert list(weights) == ["x", "city=B", "city=C"]
    assert weights["x"] == pytest.approx(2.0, abs=0.03)
    assert weights["city=B"] == pytest.approx(3.0, abs=0.03)
    assert weights["city=C"] == pytest.approx(-1.0, abs=0.03)
    assert payload["coefficients"]["intercept"] == pytest.approx(1.0, abs=0.03)
    assert payload["features"] == ["x", "city=B", "city=C"]
    assert payload["ignored_columns"] == ["note"]
    assert payload["gate"]["statistic"] == "R"  # judged as several features


def test_card_records_the_levels_and_indicator_summaries(trained: dict[str, Any]) -> None:
    card = json.loads(Path(trained["json"]["paths"]["card"]).read_text())
    features = card["signature"]["features"]
    assert features[0] == {"name": "x", "dtype": "float64"}  # numeric specs as before
    assert features[1] == {
        "name": "city",
        "dtype": "string",
        "kind": "categorical",
        "levels": ["A", "B", "C"],
    }
    assert set(card["feature_summary"]) == {"x", "city=B", "city=C", "y"}
    assert card["parameters"]["categorical"] == ["city"]
    assert card["parameters"]["max_levels"] == 50


def test_scoring_the_same_levels_reproduces_training(trained: dict[str, Any]) -> None:
    scores = trained["folder"] / "scores.parquet"
    code, out, err = _cli(
        "predict", str(trained["data"]), "--model", "cities@champion",
        "--registry", str(trained["registry"]), "--out", str(scores), "--json",
    )  # fmt: skip
    assert code == 0, err
    result = last_json(out)
    # The data holds the target: monitoring judged the indicators against the card.
    assert result["monitoring"]["status"] == "ok"
    assert {d["feature"] for d in result["monitoring"]["drift"]} == {"x", "city=B", "city=C"}
    predicted = pd.read_parquet(scores)["predicted"].to_numpy()
    training = pd.read_parquet(trained["json"]["paths"]["predictions"])["predicted"].to_numpy()
    np.testing.assert_array_equal(predicted, training)


# docs/errors.md: known_levels (predict), produced here rather than in test_errors_table.py.
def test_an_unseen_level_exits_2_naming_column_and_values(trained: dict[str, Any]) -> None:
    frame = _frame(20, seed=9)
    frame.loc[3, "city"] = "Delft"
    frame.loc[6, "city"] = "=HYPERLINK()"
    data = trained["folder"] / "unseen.csv"
    frame.to_csv(data, index=False)
    code, out, err = _cli(
        "predict", str(data), "--model", "cities@champion",
        "--registry", str(trained["registry"]), "--out", str(trained["folder"] / "u.csv"),
        "--json",
    )  # fmt: skip
    assert code == 2
    [problem] = last_json(out)["problems"]
    assert problem["check"] == "known_levels" and problem["column"] == "city"
    assert problem["rows"] == [4, 7] and problem["values"] == ["Delft", "=HYPERLINK()"]
    assert "Delft" in err and "known_levels" in err


def test_a_missing_categorical_column_is_a_missing_column(trained: dict[str, Any]) -> None:
    data = trained["folder"] / "no-city.csv"
    _frame(10).drop(columns="city").to_csv(data, index=False)
    code, out, _ = _cli(
        "predict", str(data), "--model", "cities@champion",
        "--registry", str(trained["registry"]), "--out", str(trained["folder"] / "m.csv"),
        "--json",
    )  # fmt: skip
    assert code == 2
    [problem] = last_json(out)["problems"]
    assert problem["check"] == "column_in_dataframe" and problem["values"] == ["city"]


def test_the_human_summary_lists_text_columns(prefect_harness: str, tmp_path: Path) -> None:
    data = tmp_path / "cities.csv"
    _frame(60).to_csv(data, index=False)
    code, out, err = _cli(
        "train", str(data), "--target", "y", "--features", "x",
        "--registry", str(tmp_path / "reg"), "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    assert code == 0, err
    assert (
        "ignored: city (text; use --categorical city), note (text; use --categorical note)" in out
    )


def test_too_many_levels_are_refused(prefect_harness: str, tmp_path: Path) -> None:
    frame = _frame(120)
    frame["shop"] = [f"shop {i % 60}" for i in range(120)]
    data = tmp_path / "shops.csv"
    frame.to_csv(data, index=False)
    code, out, err = _cli(
        "train", str(data), "--target", "y", "--categorical", "city,shop",
        "--registry", str(tmp_path / "reg"), "--out", str(tmp_path / "runs"), "--json",
    )  # fmt: skip
    assert code == 2
    [problem] = last_json(out)["problems"]
    assert problem["check"] == "max_levels" and problem["column"] == "shop"
    assert "60 levels" in err and "--max-levels 50" in err
    assert not list(tmp_path.rglob("model.json"))  # nothing published


def test_python_api_passes_categorical_through(prefect_harness: str, tmp_path: Path) -> None:
    frame = _frame(80)
    outcome = regflow.train(
        frame.drop(columns="note"), target="y", model="api-cities", categorical=["city"],
        registry=tmp_path / "reg", out=tmp_path / "runs",
    )  # fmt: skip
    assert outcome.status == "completed"
    assert outcome.categorical == {"city": ["A", "B", "C"]}
    assert outcome.training.coefficients["city=B"] == pytest.approx(3.0, abs=0.05)
    scores = regflow.predict(frame, model="api-cities@champion", registry=tmp_path / "reg")
    coef = outcome.training.coefficients
    effect = {level: coef.get(f"city={level}", 0.0) for level in EFFECTS}  # A: reference
    expected = outcome.training.intercept + coef["x"] * frame["x"] + frame["city"].map(effect)
    np.testing.assert_allclose(scores["predicted"], expected, rtol=1e-12, atol=1e-12)


# -- validation without a flow run -----------------------------------------------------------


def _validate(frame: pd.DataFrame, **options: Any):  # type: ignore[no-untyped-def]
    loaded = LoadedData(frame=frame, source="t.csv", format="csv", sha256="0" * 64, n_bytes=1)
    return validate_dataset(loaded, "y", None, **options)


def test_levels_are_sorted_and_the_first_is_dropped() -> None:
    frame = pd.DataFrame({"c": ["b", "c", "a", "b", "a"], "y": [1.0, 2, 3, 4, 6]})
    valid = _validate(frame, categorical=["c"])
    assert valid.levels == {"c": ["a", "b", "c"]}
    assert valid.features == ["c=b", "c=c"]
    np.testing.assert_array_equal(valid.frame["c=b"], [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(valid.frame["c=c"], [0, 1, 0, 0, 0])


def test_a_missing_level_is_not_nullable_naming_the_column() -> None:
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4, 5], "c": ["a", None, "b", "a", "b"], "y": range(5)})
    with pytest.raises(InvalidInputError) as caught:
        _validate(frame, categorical=["c"])
    [problem] = caught.value.problems
    assert (problem.check, problem.column, problem.rows) == ("not_nullable", "c", [2])


def test_quarantine_sets_a_missing_level_aside_once() -> None:
    frame = pd.DataFrame(
        {"x": np.arange(8.0), "c": ["a", "b", "c", None, "a", "b", "c", "a"], "y": np.arange(8.0)}
    )
    valid = _validate(frame, categorical=["c"], on_invalid="quarantine", max_invalid_fraction=0.2)
    assert valid.rejected is not None
    assert valid.rejected[["row", "column", "check"]].values.tolist() == [[4, "c", "not_nullable"]]
    assert len(valid.frame) == 7


def test_an_indicator_name_that_exists_is_refused() -> None:
    frame = pd.DataFrame({"c": ["a", "b", "a", "b"], "c=b": [1.0, 2, 3, 5], "y": [1.0, 2, 3, 4]})
    with pytest.raises(InvalidInputError) as caught:
        _validate(frame, categorical=["c"])
    [problem] = caught.value.problems
    assert problem.check == "indicator_name" and problem.values == ["c=b"]


def test_a_single_level_and_the_target_are_refused() -> None:
    frame = pd.DataFrame({"x": [1.0, 2, 3, 5], "c": ["a"] * 4, "y": [1.0, 2, 3, 4]})
    with pytest.raises(InvalidInputError) as caught:
        _validate(frame, categorical=["c"])
    assert [p.check for p in caught.value.problems] == ["at_least_2_levels"]
    with pytest.raises(InvalidInputError) as caught:
        _validate(frame, categorical=["y"])
    assert [p.check for p in caught.value.problems] == ["target_not_feature"]


def test_integer_codes_can_be_categorical() -> None:
    frame = pd.DataFrame(
        {"store": [10, 2, 2, 10, 7], "x": [1.0, 2, 3, 4, 5], "y": [1.0, 2, 4, 3, 5.5]}
    )
    valid = _validate(frame, categorical=["store"])
    assert valid.features == ["x", "store=2", "store=7"]  # sorted as text: "10" < "2" < "7"
    assert valid.levels == {"store": ["10", "2", "7"]}


def test_export_refuses_categorical_models(trained: dict[str, Any]) -> None:
    ref = trained["json"]["model"]["reference"]
    out = trained["folder"] / "model.joblib"
    code, _, err = _cli(
        "models", "export", ref, "--format", "sklearn", "--out", str(out),
        "--registry", str(trained["registry"]),
    )  # fmt: skip
    assert code == 2 and "has categorical features (city)" in err
    assert not out.exists()
