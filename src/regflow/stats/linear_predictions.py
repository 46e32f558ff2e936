"""Predictions of a linear model, summed one column at a time in a fixed order.

Training's evaluation and the registry's Predictor both use this, so scoring a registered
model reproduces the training run's predictions bit for bit (a BLAS product would sum in
another order), and no [n, d] matrix is copied out of the frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

BLOCK_ROWS = 1 << 17  # 1 MiB of float64: block temporaries stay in cache, no fresh pages


def linear_predictions(
    frame: pd.DataFrame, features: Sequence[str], weights: Sequence[float], intercept: float
) -> np.ndarray:
    """intercept + sum_j weights[j] * frame[features[j]], float64, one per row."""
    columns = [frame[name].to_numpy(dtype=np.float64) for name in features]
    return linear_combination(columns, weights, intercept, rows=len(frame))


def linear_combination(
    columns: Sequence[np.ndarray],
    weights: Sequence[float],
    intercept: float,
    rows: int | None = None,
) -> np.ndarray:
    """intercept + sum_j weights[j] * columns[j] (float64 arrays of `rows` values; the first
    column's length where not given), summed a block of rows at a time."""
    n = len(columns[0]) if rows is None else rows
    out = np.full(n, intercept, dtype=np.float64)
    pairs = [(float(w), column) for w, column in zip(weights, columns, strict=True)]
    scratch = np.empty(min(BLOCK_ROWS, n), dtype=np.float64)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        term = scratch[: stop - start]
        for weight, column in pairs:  # the same sums, in the same order, as whole columns
            np.multiply(column[start:stop], weight, out=term)
            out[start:stop] += term
    return out
