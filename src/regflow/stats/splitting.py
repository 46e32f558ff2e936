"""Which rows are held out: a fixed function of each row's global position and the seed.

A row's fate depends on nothing but (seed, position), so any partitioning of the same rows
(one in-memory table, the partitions of a Dask dataset) holds out the same rows.

Hand-written because numpy has no vectorised stateless generator: its bit generators' raw
streams are stable across versions (NEP 19), and Philox takes a counter and a key, but a
value at an arbitrary position needs one Philox object per row (a Python loop, ~µs a row)
and `advance` only reaches contiguous runs. SplitMix64's output function (Steele, Lea and
Flood 2014, the seeder of Java's SplittableRandom and of xoshiro) is a 64-bit bijection with
good avalanche that numpy evaluates on a whole array with wrapping uint64 arithmetic; these
few lines fix the holdout of a seed for good, whatever numpy's version.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2^64 / golden ratio, odd
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_MASK_BLOCK = 1 << 16  # rows per block of holdout_mask
SAMPLE_SEED = 0x5A3B1E  # the sample's own stream: independent of any holdout's


def _mix_scalar(z: int) -> int:
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def _mix_inplace(z: np.ndarray) -> None:
    """SplitMix64's finaliser on a uint64 array, in place (products wrap modulo 2^64)."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(_MIX1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_MIX2)
    z ^= z >> np.uint64(31)


def uniform_at(positions: np.ndarray, seed: int) -> np.ndarray:
    """A uniform draw in [0, 1) for each position: the SplitMix64 output of (seed, position).

    The seed's stream key is itself mixed, so nearby seeds give unrelated streams instead of
    the same stream shifted by a few positions.
    """
    key = _mix_scalar((seed + _GOLDEN) & _MASK64)
    z = np.asarray(positions).astype(np.uint64)  # a copy: mixed in place below
    z += np.uint64(1)
    z *= np.uint64(_GOLDEN)
    z += np.uint64(key)
    _mix_inplace(z)
    z >>= np.uint64(11)  # the top 53 bits: every double in [0, 1) this makes is exact
    return z * 2.0**-53


def holdout_mask(positions: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """True for the rows held out: each with probability `fraction`, independently.

    `positions` are the rows' global positions (non-negative integers): the same position and
    seed give the same answer in any partition. The count held out is about n * fraction.
    """
    positions = np.asarray(positions)
    if positions.size and int(np.min(positions)) < 0:
        raise ValueError("row positions must be non-negative")
    held = np.empty(positions.shape, dtype=bool)
    flat, out = positions.reshape(-1), held.reshape(-1)
    for start in range(0, flat.size, _MASK_BLOCK):  # a block's temporaries stay in cache
        stop = min(start + _MASK_BLOCK, flat.size)
        np.less(uniform_at(flat[start:stop], seed), fraction, out=out[start:stop])
    return held


def split_column(held: np.ndarray | None, n_rows: int) -> pd.Categorical[str]:
    """The predictions' `split` column: "holdout"/"train" by the mask, or "all" without a
    holdout. Built from codes, one byte a row: a column of 10M strings took 0.6 s to build
    and made the Parquet file slower to write. The categories are sorted, so grouping by
    split keeps the alphabetical order of strings."""
    if held is None:
        return pd.Categorical.from_codes(np.zeros(n_rows, dtype=np.int8), pd.Index(["all"]))
    codes = np.where(held, 0, 1).astype(np.int8)  # 0 holdout, 1 train
    return pd.Categorical.from_codes(codes, pd.Index(["holdout", "train"]))


def sample_fraction(rows: int, max_rows: int) -> float:
    """The share of rows the sample draws: every row up to max_rows, about max_rows beyond."""
    return 1.0 if rows <= max_rows else max_rows / rows


def sampled_rows(
    positions: np.ndarray, fraction: float, among: np.ndarray | None = None
) -> np.ndarray | None:
    """Indices (into `positions`) of the seeded sample both engines draw, each row with
    probability `fraction` by its global position alone, so the dask engine's workers draw
    the same rows from any partitioning. `among`: only these (sorted) indices, the training
    rows say. None where every row (of `among`) is in it (a fraction of 1)."""
    if fraction >= 1.0:
        return among
    drawn = holdout_mask(positions, SAMPLE_SEED, fraction)
    return np.flatnonzero(drawn) if among is None else among[drawn[among]]
