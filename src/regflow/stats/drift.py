"""Feature drift of live data against a small stored summary of the training column.

Training keeps one ``ColumnSummary`` per feature (a few hundred floats, JSON-serialisable), so
drift can be measured later without the training rows:

- ``population_stability_index``: PSI over bins cut at the training deciles.
- ``ks_distance``: the Kolmogorov-Smirnov distance to the CDF interpolated through 101 stored
  training quantiles.

Hand-written because no well-kept library in our dependency set computes PSI or KS against a
stored quantile summary (scipy's KS needs both samples, and scipy is not a runtime dependency).
Only finite values count everywhere: NaN and +-inf are dropped before anything is computed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = [
    "PSI_BINS",
    "PSI_FLOOR",
    "SUMMARY_QUANTILES",
    "ColumnSummary",
    "FeatureDrift",
    "feature_drift",
    "ks_distance",
    "population_stability_index",
    "summarize_column",
]

SUMMARY_QUANTILES = 101  # probabilities 0, 0.01, ..., 1
PSI_BINS = 10  # at most; a discrete column gets fewer
# Shares below this are raised to it, so an empty bin gives a large finite PSI rather than inf.
PSI_FLOOR = 1e-4

# k / 100 and k / 10 by division, so each probability is the correctly rounded decimal.
_QUANTILE_LEVELS = np.arange(SUMMARY_QUANTILES) / (SUMMARY_QUANTILES - 1)
_DECILE_LEVELS = np.arange(1, PSI_BINS) / PSI_BINS


class ColumnSummary(BaseModel):
    """What training keeps of one numeric column: moments, 101 quantiles and the PSI bins.

    Bins are right-closed: bin 0 is (-inf, e0], bin i is (e_{i-1}, e_i], the last is
    (e_last, +inf). ``bin_fractions`` has one entry per bin, each > 0, summing to 1.
    """

    model_config = ConfigDict(frozen=True)

    n: int
    mean: float
    std: float  # population (ddof=0)
    min: float
    max: float
    quantiles: list[float]
    bin_edges: list[float]
    bin_fractions: list[float]

    @model_validator(mode="after")
    def _check_shapes(self) -> ColumnSummary:
        # Summaries are read back from stored JSON; a malformed one should fail here, not later.
        if len(self.quantiles) != SUMMARY_QUANTILES:
            raise ValueError(f"expected {SUMMARY_QUANTILES} quantiles, got {len(self.quantiles)}")
        if len(self.bin_fractions) != len(self.bin_edges) + 1:
            raise ValueError("bin_fractions must have one more entry than bin_edges")
        return self


class FeatureDrift(BaseModel):
    """Drift of one feature; ``rows`` is the number of finite live values measured."""

    model_config = ConfigDict(frozen=True)

    feature: str
    psi: float
    ks: float
    live_mean: float
    train_mean: float
    rows: int


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        raise ValueError(f"{what} has no finite values")
    return finite


def _bin_shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    # side="left" counts the edges strictly below each value, which makes the bins right-closed.
    bins = np.searchsorted(edges, values, side="left")
    counts = np.bincount(bins, minlength=edges.size + 1)
    return counts / values.size


def _psi_bins(values: np.ndarray, deciles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSI edges (distinct training deciles leaving no training bin empty) and bin shares.

    Linear interpolation puts deciles between two distinct values of a discrete column (0.3
    between 0 and 1 in a 70/30 column), and a decile equal to the maximum leaves the top bin
    empty. Such bins hold no training values, so their expected share would be the floor and
    any live value landing there would dominate PSI; the edge is dropped instead.
    """
    kept: list[float] = []
    # Values <= each kept edge, so the shares follow without binning the column again.
    at_or_below = [0]
    for edge in np.unique(deciles).tolist():
        # At most PSI_BINS - 1 passes over the unsorted values: cheaper than sorting them.
        count = int(np.count_nonzero(values <= edge))
        # The bin closing at this edge must gain values, and some must lie above it.
        if at_or_below[-1] < count < values.size:
            kept.append(edge)
            at_or_below.append(count)
    at_or_below.append(values.size)
    shares = np.diff(np.asarray(at_or_below, dtype=np.int64)) / values.size
    return np.asarray(kept, dtype=np.float64), shares


def summarize_column(values: np.ndarray) -> ColumnSummary:
    """Summary of the finite values of a training column; ValueError if there are none.

    No full sort: np.quantile partitions around the order statistics it needs, which gives
    the same values (and the same interpolation) as quantiles of the sorted column.
    """
    finite = _finite(values, "column")
    # One call, so the column is copied and partitioned once for both sets of levels.
    levels = np.quantile(finite, np.concatenate([_QUANTILE_LEVELS, _DECILE_LEVELS]))
    # Guards against interpolation rounding ever making the quantiles decrease (searchsorted
    # in ks_distance needs them sorted).
    quantiles = np.maximum.accumulate(levels[:SUMMARY_QUANTILES])
    edges, shares = _psi_bins(finite, levels[SUMMARY_QUANTILES:])
    return ColumnSummary(
        n=int(finite.size),
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite.min()),
        max=float(finite.max()),
        quantiles=quantiles.tolist(),
        bin_edges=edges.tolist(),
        bin_fractions=shares.tolist(),
    )


def population_stability_index(summary: ColumnSummary, live: np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)) over the summary's bins, shares floored at PSI_FLOOR.

    e is the training share of each bin, a the share of the finite live values.
    ValueError if ``live`` has no finite values.
    """
    finite = _finite(live, "live column")
    expected = np.maximum(np.asarray(summary.bin_fractions, dtype=np.float64), PSI_FLOOR)
    actual = np.maximum(
        _bin_shares(np.asarray(summary.bin_edges, dtype=np.float64), finite), PSI_FLOOR
    )
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _train_cdf(quantiles: np.ndarray, x: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
    """The piecewise-linear training CDF at x (side="right") or its left limit (side="left").

    With j the first index past x (q_j > x, or q_j >= x for the left limit), x lies in
    [q_{j-1}, q_j) (resp. (q_{j-1}, q_j]), so the gap is never zero where it is used. At a
    repeated quantile value this gives the largest k / 100 with q_k == x for F(x) and the
    smallest for F(x-): the jump a discrete column needs.
    """
    last = quantiles.size - 1
    upper = np.searchsorted(quantiles, x, side=side)
    inner = np.clip(upper, 1, last)
    lower_q = quantiles[inner - 1]
    gap = quantiles[inner] - lower_q
    # The clipped indices outside (0, last] may have a zero gap; their value is replaced below.
    step = np.clip((x - lower_q) / np.where(gap > 0.0, gap, 1.0), 0.0, 1.0)
    inside = _QUANTILE_LEVELS[inner - 1] + step * (
        _QUANTILE_LEVELS[inner] - _QUANTILE_LEVELS[inner - 1]
    )
    result: np.ndarray = np.where(upper == 0, 0.0, np.where(upper > last, 1.0, inside))
    return result


def ks_distance(summary: ColumnSummary, live: np.ndarray) -> float:
    """sup_x |F_live(x) - F_train(x)|, in [0, 1]; ValueError if ``live`` has no finite values.

    F_train is the piecewise-linear CDF through (quantiles[k], k / 100), 0 below the minimum
    and 1 from the maximum on, so the resolution is about 0.01: a live sample drawn from the
    training column itself can score up to ~0.01. The supremum is exact for that F_train:
    between two live points F_live is constant and F_train non-decreasing, so it is reached at
    a live point or as the left limit at one, and both are checked.
    """
    finite = _finite(live, "live column")
    points, counts = np.unique(finite, return_counts=True)
    live_at = np.cumsum(counts) / finite.size
    live_below = live_at - counts / finite.size
    quantiles = np.asarray(summary.quantiles, dtype=np.float64)
    gap_at = np.abs(live_at - _train_cdf(quantiles, points, "right"))
    gap_below = np.abs(live_below - _train_cdf(quantiles, points, "left"))
    return min(1.0, float(max(gap_at.max(), gap_below.max())))


def feature_drift(name: str, summary: ColumnSummary, live: np.ndarray) -> FeatureDrift:
    """PSI, KS distance and both means for one feature's finite live values."""
    finite = _finite(live, f"live column {name!r}")
    return FeatureDrift(
        feature=name,
        psi=population_stability_index(summary, finite),
        ks=ks_distance(summary, finite),
        live_mean=float(finite.mean()),
        train_mean=summary.mean,
        rows=int(finite.size),
    )
