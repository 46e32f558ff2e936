"""Predictor input validation against the signature (pandera) and predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regflow.errors import InvalidInputError


@pytest.fixture
def predictor(registry, run_factory):
    registry.register("demo", run_factory(features=["a", "b"], coef=[2.0, -1.0], intercept=0.5))
    return registry.load("demo")


def test_predicts_in_original_units(predictor):
    frame = pd.DataFrame({"b": [1.0, 0.0, 2.0], "a": [1, 2, 3], "id": ["p", "q", "r"]})
    got = predictor.predict(frame)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [2.0 - 1.0 + 0.5, 4.0 + 0.5, 6.0 - 2.0 + 0.5])
    assert predictor.extra_columns(frame) == ["id"]  # ignored, not an error
    assert predictor.ref == "demo:1" and predictor.requested_ref == "demo"
    assert predictor.predict(frame.iloc[:0]).shape == (0,)


def test_missing_features_are_listed(predictor):
    with pytest.raises(InvalidInputError) as info:
        predictor.predict(pd.DataFrame({"c": [1.0]}), source="in.csv")
    problem = info.value.problems[0]
    assert problem.check == "column_in_dataframe" and problem.values == ["a", "b"]
    assert info.value.exit_code == 2 and "in.csv" in str(info.value)


def test_bad_values_are_reported_by_column_and_row(predictor):
    frame = pd.DataFrame(
        {"a": [1.0, np.inf, None, 4.0], "b": ["1", "x", "3", "4"]},
    )
    with pytest.raises(InvalidInputError) as info:
        predictor.predict(frame)
    found = {(p.column, p.check): p for p in info.value.problems}
    assert found[("a", "finite")].rows == [2]  # 1-based data rows, as training reports them
    assert found[("a", "not_nullable")].rows == [3]
    assert "dtype" in found[("b", "numeric_dtype")].message
    bools = pd.DataFrame({"a": [True], "b": [1.0]})
    with pytest.raises(InvalidInputError, match="numeric"):
        predictor.predict(bools)
    with pytest.raises(InvalidInputError, match="DataFrame"):
        predictor.predict(np.ones((2, 2)))
