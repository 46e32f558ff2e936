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
    out = np.full(len(frame), intercept, dtype=np.float64)
    columns = [
        (float(w), frame[name].to_numpy(dtype=np.float64))
        for name, w in zip(features, weights, strict=True)
    ]
    scratch = np.empty(min(BLOCK_ROWS, len(out)), dtype=np.float64)
    for start in range(0, len(out), BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, len(out))
        term = scratch[: stop - start]
        for weight, column in columns:  # the same sums, in the same order, as whole columns
            np.multiply(column[start:stop], weight, out=term)
            out[start:stop] += term
    return out
