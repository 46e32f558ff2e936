"""Numerically stable float64 least squares: the reference the trained model is judged against.

Method (no normal equations, so accuracy degrades with cond(A), not cond(A)^2). The data are
read in row blocks, three sweeps in all, so memory stays at a few blocks plus the outputs
(residuals, leverages) however many rows there are:

1. Exact column minima and maxima (constant columns, NaN/inf, a range for pre-scaling so that
   nothing overflows) and a first estimate of the means.
2. Householder QR of [1 | (X - mean1) / range | (y - mean1_y) / range_y] (without intercept:
   [X / range | y / range_y]). The column of ones absorbs whatever the first mean missed, so the
   rest of R is exactly the R factor of the centred data. One numpy.linalg.qr call when the
   data fit one block; otherwise tall-skinny QR: each block is cut into small chunks factored in
   one batched call, their R factors merged in a tree and stacked under the running R. The
   same sweep sums the deviations: the two-pass corrected means, variances and cross products
   (Chan, Golub & LeVeque) that give the column norms and Pearson correlations.
3. Each column is scaled to unit 2-norm by scaling the columns of R (Householder QR's backward
   error is columnwise, so this equals scaling first). An SVD of that small triangle gives the
   condition number and the numerical rank; full rank is solved by back-substitution, rank
   deficiency by the truncated SVD (minimum norm in scaled coordinates). Coefficients are then
   unscaled. The last sweep computes residuals, leverages (h_ii = squared row norm of an
   orthonormal basis of the column space, plus 1/n for the intercept) and, on request, what
   adding the squared fitted values would change (Ramsey's RESET test) without another QR.

The tall-skinny QR pieces and step 3's solve live in ``regflow.stats.r_factor``, shared with the
partition-wise route (``regflow.stats.partition_qr``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from regflow.stats.r_factor import qr_r, solve_scaled, stacked_r

__all__ = [
    "CurvatureSums",
    "CurvatureTerm",
    "LeastSquaresAnalysis",
    "LeastSquaresFit",
    "analyse_least_squares",
    "fit_least_squares",
]

_BLOCK_ELEMENTS = 1 << 19  # ~4 MiB of float64 per row block
_MIN_BLOCK_ROWS = 512
_MATMUL_ROWS = 256
# A curvature regressor whose part outside the model's column space is below this fraction of
# its norm is numerically inside it: adding it changes nothing that can be measured.
_SPAN_RTOL = 1e-8


@dataclass(frozen=True)
class LeastSquaresFit:
    coef: np.ndarray  # float64 [d], original units
    intercept: float  # 0.0 when fit_intercept=False
    condition_number: float  # 2-norm condition number of the centred (if intercept), scaled design
    rank: int
    residuals: np.ndarray  # y - X @ coef - intercept, float64 [n]
    sse: float
    r2: float  # centred R^2 with an intercept; uncentred (1 - SSE / sum(y^2)) without
    leverage: np.ndarray  # hat-matrix diagonal h_ii of the fitted model (intercept included)


@dataclass(frozen=True)
class CurvatureTerm:
    """Effect of adding z = (standardised fitted values)^2 to the design (Ramsey's RESET)."""

    ss_reduction: float  # how much of the SSE the extra regressor would remove
    df_resid: int  # residual degrees of freedom of the model with the extra regressor


@dataclass(frozen=True)
class CurvatureSums:
    """Row sums for the RESET term: z (squared fitted values over their mean square), the
    residuals e, and both projected on an orthonormal basis W of the model's columns."""

    z_sum: float
    z_sq: float
    z_e: float
    e_sum: float
    wz: np.ndarray
    we: np.ndarray

    def term(self, *, n: int, sse: float, df_resid: int, fit_intercept: bool) -> CurvatureTerm:
        # Split z into its projection on the model's column space and the rest; e is already
        # orthogonal to that space, so only z's orthogonal part can explain more of it.
        z_mean = self.z_sum / n if fit_intercept else 0.0
        z_total = self.z_sq - n * z_mean * z_mean
        z_perp_sq = z_total - float(self.wz @ self.wz)
        z_perp_e = self.z_e - z_mean * self.e_sum - float(self.wz @ self.we)
        reduction = 0.0
        if z_total > 0.0 and z_perp_sq > _SPAN_RTOL * z_total:
            reduction = min(z_perp_e * z_perp_e / z_perp_sq, sse)
        return CurvatureTerm(ss_reduction=reduction, df_resid=df_resid)


@dataclass(frozen=True)
class LeastSquaresAnalysis:
    """A fit plus the by-products of the same passes that diagnostics need."""

    fit: LeastSquaresFit
    fit_intercept: bool
    sst: float  # total sum of squares: centred with an intercept, sum(y^2) without
    correlations: np.ndarray  # Pearson r of each column with y; nan where undefined
    constant_columns: np.ndarray  # bool [d]: zero after centring (or all zero without intercept)
    null_space: np.ndarray  # [d, d - rank]: unresolvable directions, in scaled column coordinates
    curvature: CurvatureTerm | None  # None when not requested or not computable


@dataclass(frozen=True)
class _Prescale:
    """Per-column range, midpoint-free first mean and exact constancy, from the first sweep."""

    mean1: np.ndarray  # first estimate of the column means
    spread: np.ndarray  # half the range; 1 for a constant column (pre-scaling only)
    constant: np.ndarray  # bool: max == min
    y_mean1: float
    y_spread: float


@dataclass(frozen=True)
class _Moments:
    """Corrected centred moments (pre-scaled units) from the second sweep."""

    mean: np.ndarray
    y_mean: float
    sxx: np.ndarray
    sxy: np.ndarray
    syy: float


def _validate(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, np.newaxis]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D array [n, d], got shape {x.shape}")
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array [n], got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"need at least one row and one column, got shape {x.shape}")
    return x, y


def _block_rows(d: int) -> int:
    return max(_MIN_BLOCK_ROWS, _BLOCK_ELEMENTS // (d + 2))


def _column_major(block: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """The block with contiguous columns: reductions over rows are then fast."""
    if block.strides[0] == block.itemsize:
        return block
    out = scratch[: block.shape[0]]
    np.copyto(out, block)
    return out


def _prescale(x: np.ndarray, y: np.ndarray, rows: int) -> _Prescale:
    """Sweep 1: exact minima and maxima (they also reveal NaN and infinity) and a first mean."""
    n, d = x.shape
    lo = np.full(d, np.inf)
    hi = np.full(d, -np.inf)
    origin = x[0].copy()
    total = np.zeros(d)
    scratch = np.empty((min(rows, n), d), order="F")
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, n, rows):
            block = _column_major(x[start : start + rows], scratch)
            np.minimum(lo, block.min(axis=0), out=lo)
            np.maximum(hi, block.max(axis=0), out=hi)
            # Deviations from the first row: exactly zero for a constant column.
            total += (block - origin).sum(axis=0)
        finite = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(total)
        if not finite.all():
            bad = [int(j) for j in np.flatnonzero(~finite)]
            raise ValueError(f"x contains NaN, infinite or overflowing values (columns {bad})")
        y_lo = float(y.min())
        y_hi = float(y.max())
        y_total = float((y - y[0]).sum()) if n <= rows else _blocked_sum(y, float(y[0]), rows)
    if not (math.isfinite(y_lo) and math.isfinite(y_hi) and math.isfinite(y_total)):
        raise ValueError("y contains NaN, infinite or overflowing values")
    constant = lo == hi
    # Half-ranges, halved first so that hi - lo cannot overflow.
    spread = np.where(constant, 1.0, hi * 0.5 - lo * 0.5)
    return _Prescale(
        mean1=origin + total / n,
        spread=spread,
        constant=constant,
        y_mean1=float(y[0]) + y_total / n,
        y_spread=y_hi * 0.5 - y_lo * 0.5 if y_hi > y_lo else 1.0,
    )


def _blocked_sum(y: np.ndarray, origin: float, rows: int) -> float:
    return float(sum(float((y[i : i + rows] - origin).sum()) for i in range(0, y.shape[0], rows)))


def _matmul_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for a tall a, as one batched call of small products.

    Each product stays below OpenBLAS's threading threshold: on a busy machine its threads
    spin-wait on one another and one big product of a tall block runs several times slower.
    """
    m, d = a.shape
    count = m // _MATMUL_ROWS
    out = np.empty((m, *b.shape[1:]))
    if count:
        row_stride, col_stride = a.strides
        chunks = np.lib.stride_tricks.as_strided(
            a,
            shape=(count, _MATMUL_ROWS, d),
            strides=(_MATMUL_ROWS * row_stride, row_stride, col_stride),
        )
        head = out[: count * _MATMUL_ROWS].reshape((count, _MATMUL_ROWS, *b.shape[1:]))
        np.matmul(chunks, b, out=head)
    if m > count * _MATMUL_ROWS:
        out[count * _MATMUL_ROWS :] = a[count * _MATMUL_ROWS :] @ b
    return out


def _qr_and_moments(
    x: np.ndarray, y: np.ndarray, pre: _Prescale, fit_intercept: bool, rows: int
) -> tuple[np.ndarray, np.ndarray | None, _Moments]:
    """Sweep 2: Householder QR of the pre-scaled design (and y), plus centred moments.

    With an intercept the QR input is [1 | (X - mean1) / spread | (y - y_mean1) / y_spread]:
    the leading column of ones removes whatever mean the first estimate missed, so the rows
    and columns after it are exactly the R factor of the centred design. Without an intercept
    it is [X / spread | y / y_spread]. Returns R (and Q when everything fits in one block).
    """
    n, d = x.shape
    lead = 1 if fit_intercept else 0
    k = lead + d + 1
    inv_spread = 1.0 / pre.spread
    inv_y_spread = 1.0 / pre.y_spread
    single = n <= rows
    work = np.empty((min(rows, n), k), order="F")
    r = np.zeros((k, k))
    q: np.ndarray | None = None
    s1 = np.zeros(d)
    s2 = np.zeros(d)
    sxy = np.zeros(d)
    t1 = t2 = 0.0
    centred = np.empty((min(rows, n), d), order="F") if not fit_intercept else None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        m = stop - start
        body = work[:m]
        design = body[:, lead : lead + d]
        target = body[:, lead + d]
        if fit_intercept:
            body[:, 0] = 1.0
            np.subtract(x[start:stop], pre.mean1, out=design)
            design *= inv_spread
            np.subtract(y[start:stop], pre.y_mean1, out=target)
            target *= inv_y_spread
            dev, y_dev = design, target
        else:
            np.multiply(x[start:stop], inv_spread, out=design)
            np.multiply(y[start:stop], inv_y_spread, out=target)
            assert centred is not None
            dev = centred[:m]
            np.subtract(design, pre.mean1 * inv_spread, out=dev)
            y_dev = target - pre.y_mean1 * inv_y_spread
        s1 += dev.sum(axis=0)
        s2 += np.einsum("ij,ij->j", dev, dev)
        # einsum rather than BLAS for the same threading reason as _matmul_rows.
        sxy += np.einsum("i,ij->j", y_dev, dev)
        t1 += float(y_dev.sum())
        t2 += float(np.einsum("i,i->", y_dev, y_dev))
        if single:
            q_raw, r_raw = np.linalg.qr(body, mode="reduced")
            r[: r_raw.shape[0]] = r_raw
            q = np.zeros((n, k))
            q[:, : q_raw.shape[1]] = q_raw
        else:
            # Tall-skinny QR: this block's R pieces are stacked under the running R.
            r = qr_r(np.vstack([r, *stacked_r(body)]))
    # Two-pass correction: the deviations' own sums fix the first means (Chan et al.).
    moments = _Moments(
        mean=np.where(pre.constant, pre.mean1, pre.mean1 + pre.spread * (s1 / n)),
        y_mean=pre.y_mean1 + pre.y_spread * (t1 / n),
        sxx=np.maximum(s2 - s1 * s1 / n, 0.0),
        sxy=sxy - s1 * t1 / n,
        syy=max(t2 - t1 * t1 / n, 0.0),
    )
    return r, q, moments


def _analyse(
    x: np.ndarray, y: np.ndarray, fit_intercept: bool, with_curvature: bool
) -> LeastSquaresAnalysis:
    x, y = _validate(x, y)
    n, d = x.shape
    rows = _block_rows(d)
    lead = 1 if fit_intercept else 0
    pre = _prescale(x, y, rows)
    r_full, q_full, mom = _qr_and_moments(x, y, pre, fit_intercept, rows)

    # Unit-norm column scaling, applied to R: Householder QR's backward error is columnwise, so
    # scaling before or after the factorization gives the same accuracy.
    centred_norm = pre.spread * np.sqrt(mom.sxx)
    y_centred_norm = pre.y_spread * math.sqrt(mom.syy)
    if fit_intercept:
        norm = centred_norm
        mean = mom.mean
        y_mean = mom.y_mean
        sst = y_centred_norm**2
    else:
        # ||x||^2 = ||x - mean||^2 + n mean^2, via hypot so that it cannot overflow.
        norm = np.hypot(centred_norm, np.abs(mom.mean) * math.sqrt(n))
        mean = np.zeros(d)
        y_mean = 0.0
        sst = math.hypot(y_centred_norm, abs(mom.y_mean) * math.sqrt(n)) ** 2
    scaled = solve_scaled(
        r_full, lead=lead, spread=pre.spread, y_spread=pre.y_spread, norm=norm, n=n
    )
    zero, inv_norm, rank = scaled.zero, scaled.inv_norm, scaled.rank
    coef, coef_y, basis_map = scaled.coef, scaled.coef_y, scaled.basis_map
    q_basis = None  # with Q at hand the basis is Q_d U_r instead
    if q_full is not None:
        u_rank = np.ascontiguousarray(scaled.u[:, :rank])
        q_basis = _matmul_rows(q_full[:, lead : lead + d], u_rank)
    # Mean square of the (centred) fitted values, to standardise the curvature regressor.
    fitted_ms = scaled.fitted_ms
    want_curvature = with_curvature and fitted_ms > 0.0

    residuals = np.empty(n)
    leverage = np.empty(n)
    base_leverage = 1.0 / n if fit_intercept else 0.0
    sse = 0.0
    z_sum = z_sq = z_e = e_sum = 0.0
    wz = np.zeros(rank)
    we = np.zeros(rank)
    scratch = np.empty((min(rows, n), d), order="F")
    # Sweep 3: residuals, leverages and the curvature term's sums.
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        design = scratch[: stop - start]
        np.subtract(x[start:stop], mean, out=design)
        design *= inv_norm
        fitted = np.einsum("ij,j->i", design, coef_y)
        e = residuals[start:stop]
        np.subtract(y[start:stop], y_mean, out=e)
        e -= fitted
        basis = q_basis[start:stop] if q_basis is not None else _matmul_rows(design, basis_map)
        np.einsum("ij,ij->i", basis, basis, out=leverage[start:stop])
        sse += float(np.einsum("i,i->", e, e))
        if want_curvature:
            z = fitted * fitted
            z /= fitted_ms
            z_sum += float(z.sum())
            z_sq += float(np.einsum("i,i->", z, z))
            z_e += float(np.einsum("i,i->", z, e))
            e_sum += float(e.sum())
            wz += np.einsum("i,ij->j", z, basis)
            we += np.einsum("i,ij->j", e, basis)
    leverage += base_leverage
    np.clip(leverage, 0.0, 1.0, out=leverage)

    curvature: CurvatureTerm | None = None
    df_resid = n - rank - lead - 1
    if want_curvature and df_resid > 0:
        sums = CurvatureSums(z_sum=z_sum, z_sq=z_sq, z_e=z_e, e_sum=e_sum, wz=wz, we=we)
        curvature = sums.term(n=n, sse=sse, df_resid=df_resid, fit_intercept=fit_intercept)

    intercept = y_mean - math.fsum((mean * coef).tolist()) if fit_intercept else 0.0
    # A constant target (sst = 0) is fitted perfectly or not at all.
    r2 = min(max(1.0 - sse / sst, 0.0), 1.0) if sst > 0.0 else float(sse == 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = mom.sxy / np.sqrt(mom.sxx * mom.syy)
    defined = (mom.sxx > 0.0) & (mom.syy > 0.0)
    correlations = np.where(defined, np.clip(correlations, -1.0, 1.0), np.nan)
    fit = LeastSquaresFit(
        coef=coef,
        intercept=float(intercept),
        condition_number=scaled.condition_number,
        rank=rank,
        residuals=residuals,
        sse=sse,
        r2=r2,
        leverage=leverage,
    )
    return LeastSquaresAnalysis(
        fit=fit,
        fit_intercept=fit_intercept,
        sst=sst,
        correlations=correlations,
        constant_columns=zero,
        null_space=scaled.null_space,
        curvature=curvature,
    )


def fit_least_squares(x: np.ndarray, y: np.ndarray, fit_intercept: bool = True) -> LeastSquaresFit:
    """Least-squares fit of y on the columns of x (plus an intercept), in float64.

    x is [n, d] (a 1-D x is one column), y is [n]. Raises ValueError on mismatched shapes or
    non-finite values. A rank-deficient design is reported through ``rank < d``.
    """
    return _analyse(x, y, fit_intercept, with_curvature=False).fit


def analyse_least_squares(
    x: np.ndarray, y: np.ndarray, fit_intercept: bool = True
) -> LeastSquaresAnalysis:
    """fit_least_squares plus Pearson correlations, null space and the RESET curvature term."""
    return _analyse(x, y, fit_intercept, with_curvature=True)
