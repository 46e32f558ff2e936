"""Least squares by streaming sweeps over row blocks, for long, well-conditioned columns.

Sweep 1 merges each block's centred cross products of [X, y] into running ones (Chan, Golub &
LeVeque), so no sum is taken about a far-off origin; the coefficients then come from a
Cholesky factor of the unit-diagonal Gram matrix. Sweep 2 recomputes residuals block by block
and keeps totals and maxima only: the SSE, and on request leverages, Cook's distances and the
RESET sums. Nothing n-long is allocated, and blocks go to one thread per core.

Both sweeps also run partition by partition (a Dask worker, one thread): ``partition_moments``
per partition, ``Moments.merge`` on the client, ``solve_moments``, then ``partition_residuals``
with the merged fit and ``Residuals.merge``. Every result is a picklable dataclass of numpy arrays.

This is the normal-equations route, so it squares the condition number: ``solve`` returns
None (the caller then uses the QR analysis of ``regflow.stats.least_squares``) for a constant
column, a condition number above MAX_CONDITION, or values that are not finite.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np

from regflow.runtime.cores import one_blas_thread, usable_cores

__all__ = [
    "MAX_CONDITION",
    "Data",
    "Moments",
    "Residuals",
    "RowMaximum",
    "Solution",
    "partition_moments",
    "partition_residuals",
    "residuals",
    "solve",
    "solve_moments",
]

# cond^2 * eps stays below 1e-8 here: eight or more correct digits in every statistic.
MAX_CONDITION = 1e4
_BLOCK_ELEMENTS = 1 << 18  # ~2 MiB of float64 per row block: stays in cache between steps
_MIN_BLOCK_ROWS = 1024
_MAX_WORKERS = 4
_T = TypeVar("_T")


@dataclass(frozen=True)
class RowMaximum:
    row: int  # 0-based, in the data's own row numbers
    value: float


@dataclass(frozen=True)
class Data:
    """Feature columns and a target (1-D float64), optionally only the rows in `index`."""

    columns: Sequence[np.ndarray]
    y: np.ndarray
    index: np.ndarray | None = None  # sorted row numbers, or None for every row

    @property
    def n(self) -> int:
        return self.y.shape[0] if self.index is None else self.index.shape[0]

    @property
    def d(self) -> int:
        return len(self.columns)

    def fill(self, block: np.ndarray, first: int, last: int, shift: np.ndarray) -> None:
        """Rows first:last (positions in the selection) minus shift, into the block's columns."""
        for j, column in enumerate([*self.columns, self.y][: block.shape[1]]):
            out = block[:, j]
            if self.index is None:
                np.subtract(column[first:last], shift[j], out=out)
            else:
                np.take(column, self.index[first:last], out=out)
                out -= shift[j]

    def row(self, position: int) -> int:
        return position if self.index is None else int(self.index[position])


def _block_rows(k: int) -> int:
    return max(_MIN_BLOCK_ROWS, _BLOCK_ELEMENTS // k)


def _row_ranges(n: int, rows: int) -> list[tuple[int, int]]:
    """One contiguous range of whole blocks per worker thread."""
    workers = max(1, min(_MAX_WORKERS, usable_cores(), n // (4 * rows)))
    blocks = -(-n // rows)
    cuts = [min(n, (blocks * i // workers) * rows) for i in range(workers + 1)]
    return list(itertools.pairwise(cuts))


def _in_parallel(work: Callable[[int, int], _T], n: int, rows: int) -> list[_T]:
    """work(start, stop) over ranges covering 0:n; numpy releases the GIL, so threads help.

    BLAS is held to one thread meanwhile: on small blocks OpenBLAS's own threads spin-wait on
    one another, which made the sweeps 3 to 20 times slower on a busy 2-core machine.
    """
    ranges = _row_ranges(n, rows)
    with one_blas_thread():
        if len(ranges) == 1:
            return [work(*ranges[0])]
        with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
            return list(pool.map(lambda r: work(*r), ranges))


@dataclass
class Moments:
    """Count, means, centred cross products, minima and maxima of the columns of [X, y]."""

    count: int
    mean: np.ndarray  # [d + 1]
    cross: np.ndarray  # [d + 1, d + 1]
    lo: np.ndarray  # [d + 1]; +inf with no rows, NaN where a value is NaN
    hi: np.ndarray

    @classmethod
    def empty(cls, k: int) -> Moments:
        """No rows: the identity of merge."""
        return cls(0, np.zeros(k), np.zeros((k, k)), np.full(k, np.inf), np.full(k, -np.inf))

    def merge(self, other: Moments) -> None:
        """Chan et al.: add another group's rows to these (in place) without a far-off origin."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.cross = other.count, other.mean.copy(), other.cross.copy()
            self.lo, self.hi = other.lo.copy(), other.hi.copy()
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.cross += other.cross + np.outer(delta, delta) * (self.count * other.count / total)
        self.mean += delta * (other.count / total)
        self.count = total
        np.minimum(self.lo, other.lo, out=self.lo)
        np.maximum(self.hi, other.hi, out=self.hi)

    def correlations(self) -> np.ndarray:
        """Pearson r of each column with the last (y); nan where either is constant."""
        d = self.mean.shape[0] - 1
        constant = self.lo == self.hi
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.cross[:d, d] / np.sqrt(np.diag(self.cross)[:d] * self.cross[d, d])
        return np.where(~constant[:d] & ~constant[d], np.clip(r, -1.0, 1.0), np.nan)

    def merged(self, other: Moments) -> Moments:
        """Both groups' moments, leaving the inputs as they were (for a reduction tree)."""
        out = copy.deepcopy(self)
        out.merge(other)
        return out


def _moments(data: Data, rows: int, start: int, stop: int) -> Moments:
    """Sweep 1 over positions start:stop of [X, y]."""
    k = data.d + 1
    block = np.empty((min(rows, stop - start), k), order="F")
    zero = np.zeros(k)
    total = Moments.empty(k)
    for first in range(start, stop, rows):
        last = min(first + rows, stop)
        body = block[: last - first]
        data.fill(body, first, last, zero)
        lo, hi = body.min(axis=0), body.max(axis=0)
        mean = body.mean(axis=0)
        body -= mean
        total.merge(Moments(last - first, mean, body.T @ body, lo, hi))
    return total


@dataclass(frozen=True)
class Solution:
    """Sweep 1's result: moments and the least-squares coefficients."""

    n: int
    fit_intercept: bool
    mean: np.ndarray  # [d + 1] column means of [X, y]
    cross: np.ndarray  # [d + 1, d + 1] centred cross products of [X, y]
    gram: np.ndarray  # the same, uncentred without an intercept
    coef: np.ndarray
    intercept: float
    condition_number: float  # of the centred (with intercept), unit-norm design
    inv_lower: np.ndarray  # inverse Cholesky factor of the unit-diagonal Gram matrix
    norm: np.ndarray  # column norms that make the Gram matrix unit-diagonal

    @property
    def d(self) -> int:
        return self.coef.shape[0]

    @property
    def sst(self) -> float:
        return float(self.gram[-1, -1])

    def gram_inverse_times(self, v: np.ndarray) -> np.ndarray:
        return (self.inv_lower.T @ (self.inv_lower @ (v / self.norm))) / self.norm

    @property
    def shift(self) -> np.ndarray:
        """What sweep 2 subtracts from [X, y]: the means with an intercept, else nothing."""
        return self.mean if self.fit_intercept else np.zeros_like(self.mean)

    @property
    def correlations(self) -> np.ndarray:
        d = self.d
        sxx = np.diag(self.cross)[:d]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.cross[:d, d] / np.sqrt(sxx * self.cross[d, d])
        return np.clip(r, -1.0, 1.0)


def partition_moments(data: Data) -> Moments:
    """Sweep 1 over one partition in the calling thread (a Dask worker runs one task per thread)."""
    rows = _block_rows(data.d + 1)
    with np.errstate(all="ignore"), one_blas_thread():
        return _moments(data, rows, 0, data.n)


def solve(data: Data, *, fit_intercept: bool = True) -> Solution | None:
    """Sweep 1 and the coefficients; None where only the QR analysis is reliable."""
    d, n = data.d, data.n
    if d == 0 or n <= d + 2:
        return None
    rows = _block_rows(d + 1)
    with np.errstate(all="ignore"):
        parts = _in_parallel(partial(_moments, data, rows), n, rows)
    moments = parts[0]
    for part in parts[1:]:
        moments.merge(part)
    return solve_moments(moments, fit_intercept=fit_intercept)


def solve_moments(moments: Moments, *, fit_intercept: bool = True) -> Solution | None:
    """The coefficients from (merged) sweep-1 moments; None where only QR is reliable."""
    n, d = moments.count, moments.mean.shape[0] - 1
    if d == 0 or n <= d + 2:
        return None
    mean, cross = moments.mean, moments.cross
    finite = np.isfinite(cross).all() and np.isfinite(mean).all()
    if not (finite and np.isfinite(moments.lo).all() and np.isfinite(moments.hi).all()):
        return None
    if (moments.lo == moments.hi).any():
        return None  # a constant column (or target): rank and reasons come from the QR path
    gram = cross if fit_intercept else cross + n * np.outer(mean, mean)
    a = gram[:d, :d]
    norm = np.sqrt(np.diag(a))
    if not (norm > 0.0).all() or gram[d, d] <= 0.0:
        return None
    scaled = a / np.outer(norm, norm)
    eigenvalues = np.linalg.eigvalsh(scaled)
    if eigenvalues[0] <= 0.0:
        return None
    condition = math.sqrt(float(eigenvalues[-1] / eigenvalues[0]))
    if condition > MAX_CONDITION:
        return None
    inv_lower = np.linalg.inv(np.linalg.cholesky(scaled))
    coef = (inv_lower.T @ (inv_lower @ (gram[:d, d] / norm))) / norm
    intercept = math.fsum((mean[d], *(-mean[:d] * coef).tolist())) if fit_intercept else 0.0
    return Solution(
        n=n,
        fit_intercept=fit_intercept,
        mean=mean,
        cross=cross,
        gram=gram,
        coef=coef,
        intercept=float(intercept),
        condition_number=condition,
        inv_lower=inv_lower,
        norm=norm,
    )


@dataclass
class Residuals:
    """Sweep 2's sums and maxima (q = squared fitted values, shifted units)."""

    sse: float = 0.0
    e_sum: float = 0.0
    q_sum: float = 0.0
    q_sq: float = 0.0
    q_e: float = 0.0
    x_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x_e: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x_q: np.ndarray = field(default_factory=lambda: np.zeros(0))
    leverage: RowMaximum = RowMaximum(0, -1.0)
    cooks: RowMaximum = RowMaximum(0, -1.0)  # unscaled: e^2 h / (1 - h)^2

    def merge(self, other: Residuals) -> None:
        """Add another group's rows (in place); the earlier row wins a tie, as in one sweep."""
        for name in ("sse", "e_sum", "q_sum", "q_sq", "q_e", "x_sum", "x_e", "x_q"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.leverage.value > self.leverage.value:
            self.leverage = other.leverage
        if other.cooks.value > self.cooks.value:
            self.cooks = other.cooks

    def merged(self, other: Residuals) -> Residuals:
        """Both groups' sums and maxima, leaving the inputs as they were."""
        out = copy.deepcopy(self)
        out.merge(other)
        return out


def cooks_distance(residuals: np.ndarray, leverage: np.ndarray, out: np.ndarray) -> np.ndarray:
    """e^2 h / (1 - h)^2 into out, unscaled; rows with h ~ 1 get 0 (the leverage check has them)."""
    np.multiply(residuals, residuals, out=out)
    out *= leverage
    gap = np.subtract(1.0, leverage)
    np.maximum(gap, 1e-12, out=gap)
    gap *= gap
    out /= gap
    out[leverage >= 1.0 - 1e-12] = 0.0
    return out


def _residuals(
    data: Data, fit: Solution, diagnostics: bool, rows: int, row_offset: int, start: int, stop: int
) -> Residuals:
    """Sweep 2 over positions start:stop; reported rows are row_offset + the data's own rows."""
    d = data.d
    size = min(rows, stop - start)
    block = np.empty((size, d + 1), order="F")
    basis = np.empty((size, d), order="F")  # F: the matmul and the row sums ran twice as fast
    fitted, leverage, scratch = (np.empty(size) for _ in range(3))
    shift = fit.shift
    basis_map = np.ascontiguousarray((fit.inv_lower / fit.norm).T)  # h - 1/n = |x basis_map|^2
    base_leverage = 1.0 / fit.n if fit.fit_intercept else 0.0
    total = Residuals(x_sum=np.zeros(d), x_e=np.zeros(d), x_q=np.zeros(d))
    zeros = np.zeros(d)
    for first in range(start, stop, rows):
        last = min(first + rows, stop)
        m = last - first
        data.fill(block[:m], first, last, shift)
        body, e = block[:m, :d], block[:m, d]
        f = np.matmul(body, fit.coef, out=fitted[:m])
        e -= f
        part = Residuals(sse=float(e @ e), x_sum=zeros, x_e=zeros, x_q=zeros)
        if diagnostics:
            w = np.matmul(body, basis_map, out=basis[:m])
            h = np.einsum("ij,ij->i", w, w, out=leverage[:m])
            h += base_leverage
            part.e_sum = float(e.sum())
            part.x_sum = body.sum(axis=0)
            part.x_e = e @ body
            k = int(np.argmax(h))
            part.leverage = RowMaximum(row_offset + data.row(first + k), float(h[k]))
            c = cooks_distance(e, h, scratch[:m])
            k = int(np.argmax(c))
            part.cooks = RowMaximum(row_offset + data.row(first + k), float(c[k]))
            q = np.multiply(f, f, out=scratch[:m])
            part.q_sum, part.q_sq, part.q_e = float(q.sum()), float(q @ q), float(q @ e)
            part.x_q = q @ body
        total.merge(part)
    return total


def residuals(data: Data, fit: Solution, *, diagnostics: bool = False) -> Residuals:
    """Sweep 2: the SSE; with diagnostics also leverages, Cook's distances and RESET sums."""
    rows = _block_rows(data.d + 1)
    with np.errstate(all="ignore"):
        parts = _in_parallel(partial(_residuals, data, fit, diagnostics, rows, 0), data.n, rows)
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    return total


def partition_residuals(
    data: Data, fit: Solution, *, diagnostics: bool, row_offset: int = 0
) -> Residuals:
    """Sweep 2 over one partition in the calling thread, with the fit of the merged moments.

    row_offset is the partition's first row in the whole data, so that the maxima's rows are
    global (what the warnings print).
    """
    rows = _block_rows(data.d + 1)
    with np.errstate(all="ignore"), one_blas_thread():
        return _residuals(data, fit, diagnostics, rows, row_offset, 0, data.n)
