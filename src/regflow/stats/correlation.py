"""Pearson and Spearman correlation of single columns, without an [n, d] matrix."""

from __future__ import annotations

import math

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (vectorised, one sort)."""
    order = np.argsort(values)  # ties get their average rank, so any sort order will do
    ordered = values[order]
    starts_run = np.empty(ordered.shape[0], dtype=bool)
    starts_run[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_run[1:])
    run_id = np.cumsum(starts_run) - 1
    run_start = np.flatnonzero(starts_run)
    run_end = np.append(run_start[1:], ordered.shape[0])  # exclusive
    average = (run_start + run_end + 1) / 2.0  # mean of the 1-based ranks start+1 .. end
    ranks = np.empty(ordered.shape[0])
    ranks[order] = average[run_id]
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    # einsum, not BLAS dot: threaded BLAS on a busy machine is many times slower here.
    denominator = math.sqrt(float(np.einsum("i,i->", a, a)) * float(np.einsum("i,i->", b, b)))
    return float(np.einsum("i,i->", a, b)) / denominator if denominator > 0.0 else math.nan


def spearman_sampled(
    x: list[np.ndarray], y: np.ndarray, max_rows: int, seed: int
) -> tuple[np.ndarray, int]:
    """Spearman rho of each column of x with y, on at most max_rows seeded random rows."""
    n = y.shape[0]
    if n > max_rows:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n, size=max_rows, replace=False))
        x = [column[rows] for column in x]
        y = y[rows]
    y_ranks = average_ranks(y)
    rho = np.array([pearson(average_ranks(column), y_ranks) for column in x])
    return rho, y.shape[0]
