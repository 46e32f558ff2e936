"""Training and scoring apply one rule each: a model that trains can always be scored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from regflow.errors import InvalidInputError
from regflow.registry import Predictor, Registry, parse_ref
from regflow.registry.errors import InvalidReferenceError
from regflow.registry.references import check_name
from regflow.schemas.columns import RESERVED_COLUMNS
from regflow.schemas.params import MAX_MODEL_NAME, ModelParams, default_model_name
from regflow.tasks.score import PREDICTION_COLUMN, REF_COLUMN, VERSION_COLUMN, default_model_ref
from regflow.tasks.validate import resolve_columns


@pytest.fixture
def predictor(registry: Registry, run_factory: Callable[..., Path]) -> Predictor:
    registry.register("demo", run_factory(features=["a", "b"], coef=[2.0, -1.0], intercept=0.5))
    return registry.load("demo")


def _checks(err: pytest.ExceptionInfo[InvalidInputError]) -> dict[tuple[str | None, str], str]:
    return {(p.column, p.check): p.message for p in err.value.problems}


@pytest.mark.parametrize(
    "booleans",
    [pd.Series([True, False, True]), pd.Series([True, None, False], dtype=object)],
    ids=["bool", "parquet_bool_with_nulls"],
)
def test_booleans_are_refused_by_both_with_one_check(
    predictor: Predictor, booleans: pd.Series
) -> None:
    frame = pd.DataFrame({"a": booleans, "b": [1.0, 2.0, 4.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError) as trained:
        resolve_columns(frame, "y", ["a", "b"], "d.parquet")
    with pytest.raises(InvalidInputError) as scored:
        predictor.predict(frame, source="d.parquet")
    train_message = _checks(trained)[("a", "numeric_dtype")]
    assert train_message == _checks(scored)[("a", "numeric_dtype")]
    assert "0/1" in train_message
    assert trained.value.exit_code == 2
    # Without --features a boolean column is ignored, as text is.
    assert resolve_columns(frame, "y", None, "d.parquet") == (["b"], ["a"])


@pytest.mark.parametrize("name", RESERVED_COLUMNS)
def test_training_refuses_the_columns_scoring_writes(name: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], name: [3.0, 1.0, 2.0], "y": [1.0, 2.0, 4.0]})
    for target, features in [("y", [name]), ("y", None), (name, ["x"])]:
        with pytest.raises(InvalidInputError) as info:
            resolve_columns(frame, target, features, "d.csv")
        assert (name, "reserved_column") in _checks(info), (target, features)
        assert info.value.exit_code == 2


def test_scoring_uses_the_same_reserved_names() -> None:
    assert (PREDICTION_COLUMN, VERSION_COLUMN, REF_COLUMN) == RESERVED_COLUMNS


@pytest.mark.parametrize(
    "data", ["data/my data.csv", "s3://bucket/houses (v2).parquet?version=2", "x/.hidden.csv"]
)
def test_predict_looks_up_the_name_training_registers(data: str) -> None:
    name = default_model_name(data)
    assert default_model_ref(data) == f"{name}@champion"
    assert parse_ref(default_model_ref(data)).name == name
    assert default_model_ref("data/my data.csv") == "my-data@champion"


def test_one_model_name_pattern_of_128() -> None:
    longest = "m" * MAX_MODEL_NAME
    assert MAX_MODEL_NAME == 128  # the registry's limit before: stored names keep resolving
    assert check_name(longest) == ModelParams(name=longest).name
    with pytest.raises(InvalidReferenceError):
        check_name(longest + "m")
    with pytest.raises(ValueError):
        ModelParams(name=longest + "m")
    assert default_model_name("d/" + "n" * 300 + ".csv") == longest.replace("m", "n")
