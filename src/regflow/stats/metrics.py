"""MSE, RMSE, MAE and R² of one split, in float64, block by block.

Shared by the evaluation and champion/challenger, so both score models the same way. The sums
behind them (``MetricSums``) merge across partitions: a Dask worker takes ``of_arrays`` of its
rows, the client merges (Chan et al. for the target's centred sum of squares) and calls
``to_split_metrics``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from regflow.schemas.results import Split, SplitMetrics

BLOCK_ROWS = 1 << 17  # 1 MiB of float64: block temporaries stay in cache, no fresh pages


@dataclass(frozen=True)
class MetricSums:
    """Row count, the target's mean and centred sum of squares, and the error sums."""

    n: int
    mean_y: float  # nan with no rows
    m2_y: float  # sum of (y - mean_y)^2
    sse: float
    sae: float

    @classmethod
    def of_arrays(cls, y: np.ndarray, predicted: np.ndarray) -> MetricSums:
        """The sums over one partition's rows (the same block loop as split_metrics)."""
        return _sums(y, predicted, None)

    def merge(self, other: MetricSums) -> MetricSums:
        """Both groups' sums (a new object; empty groups change nothing)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean_y - self.mean_y
        return MetricSums(
            n=n,
            mean_y=self.mean_y + delta * (other.n / n),
            m2_y=self.m2_y + other.m2_y + delta * delta * (self.n * other.n / n),
            sse=self.sse + other.sse,
            sae=self.sae + other.sae,
        )

    def to_split_metrics(self, split: Split) -> SplitMetrics:
        n = self.n
        mse = self.sse / n if n else math.nan
        return SplitMetrics(
            split=split,
            n=n,
            mse=mse,
            rmse=float(np.sqrt(mse)),
            mae=self.sae / n if n else math.nan,
            r2=1.0 - self.sse / self.m2_y if self.m2_y > 0 else math.nan,
        )


def split_metrics(
    split: Split, y: np.ndarray, predicted: np.ndarray, rows: np.ndarray | None = None
) -> SplitMetrics:
    """Metrics over y[rows] (all rows when None), block by block: no full-length temporaries.

    Whole-array expressions (residual, its square, its absolute value, the centred target)
    each allocated n floats; at 10M rows their page faults cost more than the arithmetic.
    """
    return _sums(y, predicted, rows).to_split_metrics(split)


def _sums(y: np.ndarray, predicted: np.ndarray, rows: np.ndarray | None) -> MetricSums:
    """Two passes over y[rows]: its mean, then the centred and error sums."""
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
    return MetricSums(n=n, mean_y=mean, m2_y=centred, sse=sse, sae=sae)
