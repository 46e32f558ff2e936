"""MSE, RMSE, MAE and R² of one split, in float64, block by block.

Shared by the evaluation and champion/challenger, so both score models the same way.
"""

from __future__ import annotations

import numpy as np

from regflow.schemas.results import Split, SplitMetrics

BLOCK_ROWS = 1 << 17  # 1 MiB of float64: block temporaries stay in cache, no fresh pages


def split_metrics(
    split: Split, y: np.ndarray, predicted: np.ndarray, rows: np.ndarray | None = None
) -> SplitMetrics:
    """Metrics over y[rows] (all rows when None), block by block: no full-length temporaries.

    Whole-array expressions (residual, its square, its absolute value, the centred target)
    each allocated n floats; at 10M rows their page faults cost more than the arithmetic.
    """
    n = len(y) if rows is None else len(rows)
    size = min(BLOCK_ROWS, n)
    y_block, p_block = np.empty(size), np.empty(size)
    sum_y = sse = sae = 0.0
    blocks = []
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        blocks.append((start, stop))
    for start, stop in blocks:
        yb = (
            y[start:stop]
            if rows is None
            else np.take(y, rows[start:stop], out=y_block[: stop - start])
        )
        sum_y += float(yb.sum())
    mean = sum_y / n if n else float("nan")
    centred = 0.0
    for start, stop in blocks:
        k = stop - start
        yb = y[start:stop] if rows is None else np.take(y, rows[start:stop], out=y_block[:k])
        pb = (
            predicted[start:stop]
            if rows is None
            else np.take(predicted, rows[start:stop], out=p_block[:k])
        )
        residual = np.subtract(yb, pb, out=p_block[:k])
        sae += float(np.abs(residual).sum())
        np.multiply(residual, residual, out=residual)
        sse += float(residual.sum())
        deviation = np.subtract(yb, mean, out=y_block[:k])
        np.multiply(deviation, deviation, out=deviation)
        centred += float(deviation.sum())
    mse = sse / n if n else float("nan")
    r2 = 1.0 - sse / centred if centred > 0 else float("nan")
    return SplitMetrics(
        split=split,
        n=n,
        mse=mse,
        rmse=float(np.sqrt(mse)),
        mae=sae / n if n else float("nan"),
        r2=r2,
    )
