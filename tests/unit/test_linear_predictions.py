"""Predictions summed a block of rows at a time are the whole-column sums bit for bit, so
both engines and the registry's Predictor give the same predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regflow.partitioned.work import Linear, predict_linear
from regflow.stats.linear_predictions import BLOCK_ROWS, linear_combination, linear_predictions


def test_block_sums_are_the_whole_column_sums_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    n = 2 * BLOCK_ROWS + 123  # blocks, and a short last one
    columns = [rng.normal(scale=10.0**k, size=n) for k in range(-3, 4)]
    weights = rng.normal(size=len(columns)).tolist()
    whole = np.full(n, 0.25)
    for weight, column in zip(weights, columns, strict=True):
        whole += weight * column
    assert np.array_equal(linear_combination(columns, weights, 0.25), whole)
    names = [f"x{i}" for i in range(len(columns))]
    frame = pd.DataFrame(dict(zip(names, columns, strict=True)))
    assert np.array_equal(linear_predictions(frame, names, weights, 0.25), whole)
    assert np.array_equal(predict_linear(columns, Linear(names, weights, 0.25)), whole)
    assert predict_linear([], Linear([], [], 1.0)).shape == (0,)
