"""Least squares over partitions by tall-skinny QR, for designs the moment sweeps decline.

``moment_sweeps.solve_moments`` returns None for a constant column, a condition number above
its limit or a near-perfect fit, because the normal equations square the condition number.
This route does not: it is the one-table QR analysis (``regflow.stats.least_squares``) cut at
partition boundaries, the way Dask's ``dask.array.linalg.tsqr`` merges a tall factorisation.

1. ``partition_r`` per partition: the R factor of [1 | (X - mean) / spread | (y - mean) / spread]
   (without the 1 and the means when there is no intercept). Means, half-ranges and constancy
   come from the merged sweep-1 ``Moments``, so every partition scales alike; the column of ones
   absorbs whatever those means missed.
2. ``merge_r`` / ``merge_r_factors`` on the client: stack two R factors and factor again.
3. ``qr_solution``: the coefficients, rank and condition number from the merged R
   (``r_factor.solve_scaled``, the same code as the local analysis).
4. ``partition_qr_residuals`` per partition with that solution: SSE, the largest leverage and
   Cook's distance (global rows) and the RESET sums; ``QRResiduals.merge`` on the client, then
   ``fit_summary.summary_from_qr``.

Each partition runs in the calling thread; every result is a picklable dataclass of arrays.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from regflow.runtime.cores import one_blas_thread
from regflow.stats.least_squares import CurvatureSums
from regflow.stats.moment_sweeps import Data, Moments, RowMaximum, cooks_distance
from regflow.stats.r_factor import ScaledSolution, qr_r, solve_scaled, stacked_r

__all__ = [
    "QRResiduals",
    "QRSolution",
    "merge_r",
    "merge_r_factors",
    "partition_qr_residuals",
    "partition_r",
    "qr_solution",
]

_BLOCK_ELEMENTS = 1 << 19  # ~4 MiB of float64 per row block, as in the local analysis
_MIN_BLOCK_ROWS = 512
_NO_ROW = RowMaximum(0, -1.0)  # below any leverage or Cook's distance


def _block_rows(k: int) -> int:
    return max(_MIN_BLOCK_ROWS, _BLOCK_ELEMENTS // k)


@dataclass(frozen=True)
class _Prescale:
    centre: np.ndarray  # [d + 1] merged means; a constant column's exact value
    spread: np.ndarray  # [d + 1] half-ranges; 1 for a constant column
    constant: np.ndarray  # bool [d + 1]


def _prescale(moments: Moments) -> _Prescale:
    lo, hi = moments.lo, moments.hi
    if moments.count == 0:
        raise ValueError("no rows to fit")
    finite = np.isfinite(lo) & np.isfinite(hi)
    if not finite.all():
        bad = [int(j) for j in np.flatnonzero(~finite)]
        raise ValueError(f"NaN or infinite values (columns {bad} of [X, y])")
    constant = lo == hi
    # Halved first so that hi - lo cannot overflow; the exact value of a constant column makes
    # its deviations exactly zero.
    return _Prescale(
        centre=np.where(constant, lo, moments.mean),
        spread=np.where(constant, 1.0, hi * 0.5 - lo * 0.5),
        constant=constant,
    )


def partition_r(data: Data, moments: Moments, *, fit_intercept: bool = True) -> np.ndarray:
    """The [k, k] R factor of this partition's pre-scaled [1 | X | y] (k = d + 2, or d + 1
    without an intercept); zeros for an empty partition. `moments` are the merged ones."""
    pre = _prescale(moments)
    lead = 1 if fit_intercept else 0
    k = lead + data.d + 1
    shift = pre.centre if fit_intercept else np.zeros(k - lead)
    inv_spread = 1.0 / pre.spread
    rows = _block_rows(k)
    r = np.zeros((k, k))
    block = np.empty((min(rows, data.n), k), order="F")
    with one_blas_thread():
        for first in range(0, data.n, rows):
            last = min(first + rows, data.n)
            body = block[: last - first]
            body[:, :lead] = 1.0
            data.fill(body[:, lead:], first, last, shift)
            body[:, lead:] *= inv_spread
            r = qr_r(np.vstack([r, *stacked_r(body)]))
    return r


def merge_r(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The R factor of two partitions together: R of [upper; lower]."""
    return qr_r(np.vstack([upper, lower]))


def merge_r_factors(factors: Sequence[np.ndarray]) -> np.ndarray:
    """All partitions' R factors merged pairwise (a tree: log2(p) levels of small QRs)."""
    if not factors:
        raise ValueError("no R factors to merge")
    level = list(factors)
    while len(level) > 1:
        pairs = range(0, len(level) - 1, 2)
        merged = [merge_r(level[i], level[i + 1]) for i in pairs]
        level = merged + level[len(level) - len(level) % 2 :]
    return level[0]


@dataclass(frozen=True)
class QRSolution:
    """The least-squares fit read off the merged R factor."""

    n: int
    fit_intercept: bool
    mean: np.ndarray  # [d] column means subtracted before scaling (zeros without intercept)
    y_mean: float
    coef: np.ndarray
    intercept: float
    sst: float  # centred with an intercept, sum(y^2) without
    correlations: np.ndarray  # Pearson r of each column with y; nan where a column is constant
    scaled: ScaledSolution  # rank, condition number, basis map, null space, fitted mean square

    @property
    def d(self) -> int:
        return self.coef.shape[0]


def qr_solution(r: np.ndarray, moments: Moments, *, fit_intercept: bool = True) -> QRSolution:
    """Coefficients and the rest from the merged R factor and the merged sweep-1 moments.

    Raises ValueError where the moments hold NaN or infinity (validate the data first).
    """
    pre = _prescale(moments)
    n = moments.count
    lead = 1 if fit_intercept else 0
    d = r.shape[1] - lead - 1
    spread, y_spread = pre.spread[:d], float(pre.spread[d])
    if fit_intercept:
        # R[0, j] / R[0, 0] is the mean of the pre-scaled column: the two-pass correction.
        corrected = pre.centre + pre.spread * (r[0, 1:] / r[0, 0])
        centre = np.where(pre.constant, pre.centre, corrected)
        zero = pre.constant[:d]
    else:
        centre = np.zeros(d + 1)
        zero = pre.constant[:d] & (pre.centre[:d] == 0.0)
    # Rows after the ones column hold the R factor of the centred columns: their column norms.
    body = r[lead:, lead:]
    norm = np.where(zero, 0.0, spread * np.linalg.norm(body[:, :d], axis=0))
    sst = (y_spread * float(np.linalg.norm(body[:, d]))) ** 2
    scaled = solve_scaled(r, lead=lead, spread=spread, y_spread=y_spread, norm=norm, n=n)
    mean, y_mean = centre[:d], float(centre[d])
    intercept = y_mean - math.fsum((mean * scaled.coef).tolist()) if fit_intercept else 0.0

    return QRSolution(
        n=n,
        fit_intercept=fit_intercept,
        mean=mean,
        y_mean=y_mean,
        coef=scaled.coef,
        intercept=float(intercept),
        sst=sst,
        correlations=moments.correlations(),
        scaled=scaled,
    )


@dataclass
class QRResiduals:
    """The second pass's sums and maxima (z = squared fitted values over their mean square)."""

    sse: float = 0.0
    z_sum: float = 0.0
    z_sq: float = 0.0
    z_e: float = 0.0
    e_sum: float = 0.0
    wz: np.ndarray = field(default_factory=lambda: np.zeros(0))  # z projected on the basis
    we: np.ndarray = field(default_factory=lambda: np.zeros(0))
    leverage: RowMaximum = _NO_ROW
    cooks: RowMaximum = _NO_ROW  # unscaled: e^2 h / (1 - h)^2

    def merge(self, other: QRResiduals) -> None:
        """Add another group's rows (in place); the earlier row wins a tie."""
        for name in ("sse", "z_sum", "z_sq", "z_e", "e_sum", "wz", "we"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.leverage.value > self.leverage.value:
            self.leverage = other.leverage
        if other.cooks.value > self.cooks.value:
            self.cooks = other.cooks

    def merged(self, other: QRResiduals) -> QRResiduals:
        out = copy.deepcopy(self)
        out.merge(other)
        return out

    @property
    def curvature_sums(self) -> CurvatureSums:
        return CurvatureSums(self.z_sum, self.z_sq, self.z_e, self.e_sum, self.wz, self.we)


def partition_qr_residuals(data: Data, fit: QRSolution, *, row_offset: int = 0) -> QRResiduals:
    """Residuals, leverages and Cook's distances of one partition under the merged fit.

    Reported rows are row_offset + the partition's own rows (global, for the warnings).
    """
    d, scaled = data.d, fit.scaled
    rank = scaled.rank
    rows = _block_rows(d + 1)
    block = np.empty((min(rows, data.n), d + 1), order="F")
    shift = np.append(fit.mean, fit.y_mean)
    base_leverage = 1.0 / fit.n if fit.fit_intercept else 0.0
    curved = scaled.fitted_ms > 0.0
    total = QRResiduals(wz=np.zeros(rank), we=np.zeros(rank))
    with np.errstate(all="ignore"), one_blas_thread():
        for first in range(0, data.n, rows):
            last = min(first + rows, data.n)
            body = block[: last - first]
            data.fill(body, first, last, shift)
            design, e = body[:, :d], body[:, d]
            design *= scaled.inv_norm
            fitted = np.einsum("ij,j->i", design, scaled.coef_y)
            e -= fitted
            basis = design @ scaled.basis_map
            h = np.einsum("ij,ij->i", basis, basis)
            h += base_leverage
            np.clip(h, 0.0, 1.0, out=h)
            part = QRResiduals(sse=float(np.einsum("i,i->", e, e)))
            k = int(np.argmax(h))
            part.leverage = RowMaximum(row_offset + data.row(first + k), float(h[k]))
            c = cooks_distance(e, h, np.empty_like(h))
            k = int(np.argmax(c))
            part.cooks = RowMaximum(row_offset + data.row(first + k), float(c[k]))
            if curved:
                z = fitted * fitted
                z /= scaled.fitted_ms
                part.z_sum, part.z_sq = float(z.sum()), float(np.einsum("i,i->", z, z))
                part.z_e, part.e_sum = float(np.einsum("i,i->", z, e)), float(e.sum())
                part.wz, part.we = z @ basis, e @ basis
            else:
                part.wz, part.we = np.zeros(rank), np.zeros(rank)
            total.merge(part)
    return total
