"""What the gate needs to know about a least-squares fit, without keeping n-length arrays.

Two ways to the same summary:

- ``summarise_analysis``: from the exact QR analysis (``regflow.least_squares``), which keeps
  residuals and leverages for every row. Accurate on any design; the reference everywhere.
- ``summarise_by_moments``: two streaming sweeps over row blocks, for long columns. The first
  merges per-block centred cross products (Chan, Golub & LeVeque), so no sum is taken about a
  far-off origin; the second computes residuals, leverages, Cook's distances and the RESET
  sums block by block and keeps only their totals and maxima. It squares the condition number
  (normal equations), so it declines (returns None) whenever that could matter: a constant
  column, a badly conditioned design, a near-perfect fit, or values that are not finite.

``summarise_fit`` picks the streaming one for long columns and falls back to the exact one.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from regflow.least_squares import CurvatureTerm, LeastSquaresAnalysis, analyse_least_squares

__all__ = [
    "MOMENTS_MAX_CONDITION",
    "MOMENTS_MIN_ROWS",
    "FitSummary",
    "RowMaximum",
    "summarise_analysis",
    "summarise_by_moments",
    "summarise_fit",
]

# Below this many rows the exact QR analysis is cheap (tens of milliseconds).
MOMENTS_MIN_ROWS = 100_000
# cond^2 * eps stays below 1e-8 here: eight or more correct digits in every statistic.
MOMENTS_MAX_CONDITION = 1e4
# 1 - R^2 below this: the residuals are rounding-sized, which only the QR analysis resolves.
MOMENTS_MIN_UNEXPLAINED = 1e-8
# A curvature regressor whose part outside the model's column space is below this fraction of
# its norm is numerically inside it (the same rule as the QR analysis).
_SPAN_RTOL = 1e-8
_BLOCK_ELEMENTS = 1 << 18  # ~2 MiB of float64 per row block: stays in cache between steps
_MIN_BLOCK_ROWS = 1024
_MAX_WORKERS = 4
_T = TypeVar("_T")


@dataclass(frozen=True)
class RowMaximum:
    row: int  # 0-based
    value: float


@dataclass(frozen=True)
class FitSummary:
    n: int
    fit_intercept: bool
    rank: int
    condition_number: float  # of the centred (with intercept), unit-norm design
    sse: float
    sst: float  # centred with an intercept, sum(y^2) without
    r2: float
    correlations: np.ndarray  # Pearson r of each column with y; nan where undefined
    constant_columns: np.ndarray  # bool [d]: zero after centring (or all zero without intercept)
    null_space: np.ndarray  # [d, d - rank], scaled column coordinates
    curvature: CurvatureTerm | None
    max_leverage: RowMaximum
    max_cooks_distance: RowMaximum | None  # None where undefined (no residual variance)
    method: str  # "qr" or "moments"


def _parameters(rank: int, fit_intercept: bool) -> int:
    return rank + (1 if fit_intercept else 0)


def _cooks_scale(n: int, params: int, sse: float) -> float | None:
    """p s^2, the denominator of Cook's distance, or None where it is undefined."""
    if n <= params or params == 0 or sse <= 0.0:
        return None
    return params * sse / (n - params)


def _cooks_distance(residuals: np.ndarray, leverage: np.ndarray, out: np.ndarray) -> np.ndarray:
    """e^2 h / (1 - h)^2 into out, unscaled; rows with h ~ 1 get 0 (the leverage check has them)."""
    np.multiply(residuals, residuals, out=out)
    out *= leverage
    gap = np.subtract(1.0, leverage)
    np.maximum(gap, 1e-12, out=gap)
    gap *= gap
    out /= gap
    out[leverage >= 1.0 - 1e-12] = 0.0
    return out


def summarise_analysis(analysis: LeastSquaresAnalysis) -> FitSummary:
    """The summary of an exact QR analysis."""
    fit = analysis.fit
    n = fit.leverage.shape[0]
    row = int(np.argmax(fit.leverage))
    scale = _cooks_scale(n, _parameters(fit.rank, analysis.fit_intercept), fit.sse)
    cooks: RowMaximum | None = None
    if scale is not None:
        chunk = 1 << 16
        best, best_row = -1.0, 0
        out = np.empty(min(chunk, n))
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            values = _cooks_distance(
                fit.residuals[start:stop], fit.leverage[start:stop], out[: stop - start]
            )
            k = int(np.argmax(values))
            if values[k] > best:
                best, best_row = float(values[k]), start + k
        cooks = RowMaximum(best_row, best / scale)
    return FitSummary(
        n=n,
        fit_intercept=analysis.fit_intercept,
        rank=fit.rank,
        condition_number=fit.condition_number,
        sse=fit.sse,
        sst=analysis.sst,
        r2=fit.r2,
        correlations=analysis.correlations,
        constant_columns=analysis.constant_columns,
        null_space=analysis.null_space,
        curvature=analysis.curvature,
        max_leverage=RowMaximum(row, float(fit.leverage[row])),
        max_cooks_distance=cooks,
        method="qr",
    )


def _fill(
    block: np.ndarray,
    columns: Sequence[np.ndarray],
    start: int,
    stop: int,
    shift: np.ndarray | None = None,
) -> None:
    """Rows start:stop of the columns (minus shift) into a column-major block."""
    for j, column in enumerate(columns):
        if shift is None:
            block[:, j] = column[start:stop]
        else:
            np.subtract(column[start:stop], shift[j], out=block[:, j])


def _block_rows(k: int) -> int:
    return max(_MIN_BLOCK_ROWS, _BLOCK_ELEMENTS // k)


def _row_ranges(n: int, rows: int) -> list[tuple[int, int]]:
    """One contiguous range of whole blocks per worker thread."""
    workers = max(1, min(_MAX_WORKERS, len(os.sched_getaffinity(0)), n // (4 * rows)))
    blocks = -(-n // rows)
    cuts = [min(n, (blocks * i // workers) * rows) for i in range(workers + 1)]
    return list(itertools.pairwise(cuts))


def _in_parallel(work: Callable[[int, int], _T], ranges: list[tuple[int, int]]) -> list[_T]:
    """work(start, stop) for each range; numpy releases the GIL, so threads use every core.

    BLAS is held to one thread meanwhile: on small blocks OpenBLAS's own threads spin-wait on
    one another, which made the sweeps 3 to 20 times slower on a busy 2-core machine.
    """
    if len(ranges) == 1:
        with threadpool_limits(limits=1, user_api="blas"):
            return [work(*ranges[0])]
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=len(ranges)) as pool,
    ):
        return list(pool.map(lambda r: work(*r), ranges))


@dataclass
class _Moments:
    """Count, means, centred cross products, minima and maxima of some rows."""

    count: int
    mean: np.ndarray
    cross: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def merge(self, other: _Moments) -> None:
        """Chan et al.: combine two groups' centred sums without a far-off origin."""
        total = self.count + other.count
        delta = other.mean - self.mean
        self.cross += other.cross + np.outer(delta, delta) * (self.count * other.count / total)
        self.mean += delta * (other.count / total)
        self.count = total
        np.minimum(self.lo, other.lo, out=self.lo)
        np.maximum(self.hi, other.hi, out=self.hi)


def _moments(columns: Sequence[np.ndarray], rows: int, start: int, stop: int) -> _Moments:
    """Sweep 1 over rows start:stop."""
    k = len(columns)
    block = np.empty((min(rows, stop - start), k), order="F")
    total = _Moments(0, np.zeros(k), np.zeros((k, k)), np.full(k, np.inf), np.full(k, -np.inf))
    for first in range(start, stop, rows):
        last = min(first + rows, stop)
        body = block[: last - first]
        _fill(body, columns, first, last)
        lo, hi = body.min(axis=0), body.max(axis=0)
        mean = body.mean(axis=0)
        body -= mean
        total.merge(_Moments(last - first, mean, body.T @ body, lo, hi))
    return total


@dataclass(frozen=True)
class _Model:
    """What sweep 2 needs from sweep 1's solution."""

    x_shift: np.ndarray  # column means with an intercept, zeros without
    y_shift: float
    coef: np.ndarray
    basis_map: np.ndarray  # [d, d]: rows of x_shifted @ basis_map have squared norm h - 1/n
    base_leverage: float
    curvature: bool


@dataclass
class _Residuals:
    """Sums and maxima of sweep 2 over some rows (q = squared fitted values)."""

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

    def merge(self, other: _Residuals) -> None:
        for name in ("sse", "e_sum", "q_sum", "q_sq", "q_e", "x_sum", "x_e", "x_q"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.leverage.value > self.leverage.value:
            self.leverage = other.leverage
        if other.cooks.value > self.cooks.value:
            self.cooks = other.cooks


def _residuals(
    columns: Sequence[np.ndarray], y: np.ndarray, model: _Model, rows: int, start: int, stop: int
) -> _Residuals:
    """Sweep 2 over rows start:stop: residuals, leverages, Cook's distances, RESET sums."""
    d = len(columns)
    size = min(rows, stop - start)
    block = np.empty((size, d), order="F")
    basis = np.empty((size, d))
    fitted, residual, leverage, scratch = (np.empty(size) for _ in range(4))
    total = _Residuals(x_sum=np.zeros(d), x_e=np.zeros(d), x_q=np.zeros(d))
    for first in range(start, stop, rows):
        last = min(first + rows, stop)
        m = last - first
        body = block[:m]
        _fill(body, columns, first, last, model.x_shift)
        f = np.matmul(body, model.coef, out=fitted[:m])
        e = np.subtract(y[first:last], model.y_shift, out=residual[:m])
        e -= f
        w = np.matmul(body, model.basis_map, out=basis[:m])
        h = np.einsum("ij,ij->i", w, w, out=leverage[:m])
        h += model.base_leverage
        part = _Residuals(
            sse=float(e @ e),
            e_sum=float(e.sum()),
            x_sum=body.sum(axis=0),
            x_e=e @ body,
            x_q=np.zeros(d),
        )
        k = int(np.argmax(h))
        part.leverage = RowMaximum(first + k, float(h[k]))
        c = _cooks_distance(e, h, scratch[:m])
        k = int(np.argmax(c))
        part.cooks = RowMaximum(first + k, float(c[k]))
        if model.curvature:
            q = np.multiply(f, f, out=scratch[:m])
            part.q_sum, part.q_sq, part.q_e = float(q.sum()), float(q @ q), float(q @ e)
            part.x_q = q @ body
        total.merge(part)
    return total


def summarise_by_moments(
    columns: Sequence[np.ndarray], y: np.ndarray, *, fit_intercept: bool = True
) -> FitSummary | None:
    """Streaming summary of y on the columns (1-D float64 arrays); None where it may mislead."""
    d = len(columns)
    n = y.shape[0]
    if d == 0 or n <= d + 2:
        return None
    rows = _block_rows(d + 1)
    ranges = _row_ranges(n, rows)
    with np.errstate(all="ignore"):
        parts = _in_parallel(partial(_moments, [*columns, y], rows), ranges)
    moments = parts[0]
    for part in parts[1:]:
        moments.merge(part)
    mean, cross = moments.mean, moments.cross
    if not (np.isfinite(cross).all() and np.isfinite(moments.lo).all()):
        return None
    if not np.isfinite(moments.hi).all() or (moments.lo == moments.hi).any():
        return None  # a constant column (or target): rank and reasons come from the QR path
    sxx = np.diag(cross)[:d]
    syy = float(cross[d, d])
    sxy = cross[:d, d]
    gram = cross if fit_intercept else cross + n * np.outer(mean, mean)
    a = gram[:d, :d]
    b = gram[:d, d]
    sst = float(gram[d, d])
    norm = np.sqrt(np.diag(a))
    if not (norm > 0.0).all() or sst <= 0.0:
        return None
    scaled = a / np.outer(norm, norm)
    eigenvalues = np.linalg.eigvalsh(scaled)
    if eigenvalues[0] <= 0.0:
        return None
    condition = math.sqrt(float(eigenvalues[-1] / eigenvalues[0]))
    if condition > MOMENTS_MAX_CONDITION:
        return None
    # Cholesky of the scaled Gram matrix: coefficients, and leverages as squared row norms.
    inv_lower = np.linalg.inv(np.linalg.cholesky(scaled))

    def solve(v: np.ndarray) -> np.ndarray:  # the Gram matrix's inverse times v
        return (inv_lower.T @ (inv_lower @ (v / norm))) / norm

    coef = solve(b)
    fitted_ms = float(coef @ a @ coef) / n
    model = _Model(
        x_shift=mean[:d] if fit_intercept else np.zeros(d),
        y_shift=float(mean[d]) if fit_intercept else 0.0,
        coef=coef,
        basis_map=np.ascontiguousarray((inv_lower / norm).T),
        base_leverage=1.0 / n if fit_intercept else 0.0,
        curvature=fitted_ms > 0.0,
    )
    parts2 = _in_parallel(partial(_residuals, columns, y, model, rows), ranges)
    sums = parts2[0]
    for part2 in parts2[1:]:
        sums.merge(part2)
    sse = sums.sse
    if not math.isfinite(sse) or sse <= MOMENTS_MIN_UNEXPLAINED * sst:
        return None

    curvature: CurvatureTerm | None = None
    lead = 1 if fit_intercept else 0
    df_resid = n - d - lead - 1
    if model.curvature and df_resid > 0:
        # Only z's part outside the model's column space (the intercept's included) can
        # explain more of e: project z = q / fitted_ms on the columns and the constant.
        z_sum, z_sq, z_e = sums.q_sum / fitted_ms, sums.q_sq / fitted_ms**2, sums.q_e / fitted_ms
        z_mean = z_sum / n if fit_intercept else 0.0
        z_total = z_sq - n * z_mean * z_mean
        cov_zx = sums.x_q / fitted_ms - z_mean * sums.x_sum
        gamma = solve(cov_zx)
        z_perp_sq = z_total - float(gamma @ cov_zx)
        z_perp_e = z_e - z_mean * sums.e_sum - float(gamma @ sums.x_e)
        reduction = 0.0
        if z_total > 0.0 and z_perp_sq > _SPAN_RTOL * z_total:
            reduction = min(z_perp_e * z_perp_e / z_perp_sq, sse)
        curvature = CurvatureTerm(ss_reduction=reduction, df_resid=df_resid)

    scale = _cooks_scale(n, _parameters(d, fit_intercept), sse)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    return FitSummary(
        n=n,
        fit_intercept=fit_intercept,
        rank=d,
        condition_number=condition,
        sse=sse,
        sst=sst,
        r2=min(max(1.0 - sse / sst, 0.0), 1.0),
        correlations=correlations,
        constant_columns=np.zeros(d, dtype=bool),
        null_space=np.zeros((d, 0)),
        curvature=curvature,
        max_leverage=RowMaximum(sums.leverage.row, min(sums.leverage.value, 1.0)),
        max_cooks_distance=(
            None if scale is None else RowMaximum(sums.cooks.row, sums.cooks.value / scale)
        ),
        method="moments",
    )


def summarise_fit(
    columns: Sequence[np.ndarray], y: np.ndarray, *, fit_intercept: bool = True
) -> FitSummary:
    """The streaming summary for long columns where it is trustworthy, else the exact one.

    Raises ValueError (from the QR analysis) on NaN or infinite values.
    """
    if y.shape[0] >= MOMENTS_MIN_ROWS:
        summary = summarise_by_moments(columns, y, fit_intercept=fit_intercept)
        if summary is not None:
            return summary
    x = np.column_stack(columns) if columns else np.empty((y.shape[0], 0))
    return summarise_analysis(analyse_least_squares(x, y, fit_intercept=fit_intercept))
