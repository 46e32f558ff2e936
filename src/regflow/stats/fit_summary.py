"""What the gate needs to know about a least-squares fit, without keeping n-length arrays.

Two ways to the same summary:

- ``summarise_analysis``: from the exact QR analysis (``regflow.stats.least_squares``), which keeps
  residuals and leverages for every row. Accurate on any design; the reference everywhere.
- ``summarise_by_moments``: two streaming sweeps (``regflow.stats.moment_sweeps``) that keep only
  totals and maxima. It declines (returns None) wherever squaring the condition number could
  matter: a constant column, a badly conditioned design, a near-perfect fit, values that are
  not finite.

``summarise_fit`` picks the streaming one for long columns and falls back to the exact one;
``reference_fit`` does the same for the evaluation's least-squares reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from regflow.stats import moment_sweeps, partition_qr
from regflow.stats.least_squares import (
    CurvatureTerm,
    LeastSquaresAnalysis,
    analyse_least_squares,
    fit_least_squares,
)
from regflow.stats.moment_sweeps import RowMaximum, cooks_distance

__all__ = [
    "MOMENTS_MIN_ROWS",
    "FitSummary",
    "ReferenceFit",
    "RowMaximum",
    "provisional_summary",
    "reference_fit",
    "summarise_analysis",
    "summarise_by_moments",
    "summarise_fit",
    "summary_from_qr",
    "summary_from_sweeps",
]

# Below this many rows the exact QR analysis is cheap (tens of milliseconds).
MOMENTS_MIN_ROWS = 100_000
# 1 - R^2 below this: the residuals are rounding-sized, which only the QR analysis resolves.
MOMENTS_MIN_UNEXPLAINED = 1e-8
# A provisional summary (sse from the moments alone) only where its rounding error, about
# eps * condition^2 * sst, is this small against the sse it reports.
PROVISIONAL_MAX_ERROR = 1e-8
# A curvature regressor whose part outside the model's column space is below this fraction of
# its norm is numerically inside it (the same rule as the QR analysis).
_SPAN_RTOL = 1e-8


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
            values = cooks_distance(
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


def summarise_by_moments(
    columns: Sequence[np.ndarray], y: np.ndarray, *, fit_intercept: bool = True
) -> FitSummary | None:
    """Streaming summary of y on the columns (1-D float64 arrays); None where it may mislead."""
    data = moment_sweeps.Data(columns, y)
    fit = moment_sweeps.solve(data, fit_intercept=fit_intercept)
    if fit is None:
        return None
    return summary_from_sweeps(fit, moment_sweeps.residuals(data, fit, diagnostics=True))


def summary_from_sweeps(
    fit: moment_sweeps.Solution, sums: moment_sweeps.Residuals
) -> FitSummary | None:
    """The summary from sweep 1's fit and sweep 2's sums (diagnostics on), however they were
    taken (one table or merged partitions); None where only the QR analysis is reliable."""
    n, d, fit_intercept = fit.n, fit.d, fit.fit_intercept
    sse, sst = sums.sse, fit.sst
    if not np.isfinite(sse) or sse <= MOMENTS_MIN_UNEXPLAINED * sst:
        return None

    curvature: CurvatureTerm | None = None
    lead = 1 if fit_intercept else 0
    df_resid = n - d - lead - 1
    fitted_ms = float(fit.coef @ fit.gram[:d, :d] @ fit.coef) / n
    if fitted_ms > 0.0 and df_resid > 0:
        # Only z's part outside the model's column space (the intercept's included) can
        # explain more of e: project z = q / fitted_ms on the columns and the constant.
        z_sum, z_sq, z_e = sums.q_sum / fitted_ms, sums.q_sq / fitted_ms**2, sums.q_e / fitted_ms
        z_mean = z_sum / n if fit_intercept else 0.0
        z_total = z_sq - n * z_mean * z_mean
        cov_zx = sums.x_q / fitted_ms - z_mean * sums.x_sum
        gamma = fit.gram_inverse_times(cov_zx)
        z_perp_sq = z_total - float(gamma @ cov_zx)
        z_perp_e = z_e - z_mean * sums.e_sum - float(gamma @ sums.x_e)
        reduction = 0.0
        if z_total > 0.0 and z_perp_sq > _SPAN_RTOL * z_total:
            reduction = min(z_perp_e * z_perp_e / z_perp_sq, sse)
        curvature = CurvatureTerm(ss_reduction=reduction, df_resid=df_resid)

    scale = _cooks_scale(n, _parameters(d, fit_intercept), sse)
    return _moments_summary(
        fit, sse, curvature, RowMaximum(sums.leverage.row, min(sums.leverage.value, 1.0)),
        None if scale is None else RowMaximum(sums.cooks.row, sums.cooks.value / scale),
    )  # fmt: skip


def _moments_summary(
    fit: moment_sweeps.Solution,
    sse: float,
    curvature: CurvatureTerm | None,
    leverage: RowMaximum,
    cooks: RowMaximum | None,
) -> FitSummary:
    """A full-rank fit's summary on the moment route (solve_moments refuses the others)."""
    d, sst = fit.d, fit.sst
    return FitSummary(
        n=fit.n,
        fit_intercept=fit.fit_intercept,
        rank=d,
        condition_number=fit.condition_number,
        sse=sse,
        sst=sst,
        r2=min(max(1.0 - sse / sst, 0.0), 1.0),
        correlations=fit.correlations,
        constant_columns=np.zeros(d, dtype=bool),
        null_space=np.zeros((d, 0)),
        curvature=curvature,
        max_leverage=leverage,
        max_cooks_distance=cooks,
        method="moments",
    )


def provisional_summary(fit: moment_sweeps.Solution) -> FitSummary | None:
    """The fit's numbers from sweep 1 alone, before the residual sweep: sse from the moments
    (sst - b'Xy), no curvature term, no leverage or Cook's distance. It lets a pass over the
    data make the gate's decision before training, the diagnostics following from a later
    pass (summary_from_sweeps replaces it). None where that sse is not trustworthy (a
    near-perfect fit or a badly conditioned design)."""
    d, sst = fit.d, fit.sst
    sse = sst - float(fit.gram[:d, d] @ fit.coef)
    error = np.finfo(np.float64).eps * fit.condition_number**2 * sst
    if not np.isfinite(sse) or sse <= MOMENTS_MIN_UNEXPLAINED * sst:
        return None
    if error > PROVISIONAL_MAX_ERROR * sse:
        return None
    return _moments_summary(fit, sse, None, RowMaximum(0, 0.0), None)


def summary_from_qr(fit: partition_qr.QRSolution, sums: partition_qr.QRResiduals) -> FitSummary:
    """The summary from the partition-wise QR route's merged fit and second-pass sums."""
    n, fit_intercept, scaled = fit.n, fit.fit_intercept, fit.scaled
    lead = 1 if fit_intercept else 0
    sse, sst = sums.sse, fit.sst
    df_resid = n - scaled.rank - lead - 1
    curvature: CurvatureTerm | None = None
    if scaled.fitted_ms > 0.0 and df_resid > 0:
        curvature = sums.curvature_sums.term(
            n=n, sse=sse, df_resid=df_resid, fit_intercept=fit_intercept
        )
    scale = _cooks_scale(n, _parameters(scaled.rank, fit_intercept), sse)
    return FitSummary(
        n=n,
        fit_intercept=fit_intercept,
        rank=scaled.rank,
        condition_number=scaled.condition_number,
        sse=sse,
        sst=sst,
        # A constant target (sst = 0) is fitted perfectly or not at all.
        r2=min(max(1.0 - sse / sst, 0.0), 1.0) if sst > 0.0 else float(sse == 0.0),
        correlations=fit.correlations,
        constant_columns=scaled.zero,
        null_space=scaled.null_space,
        curvature=curvature,
        max_leverage=sums.leverage,
        max_cooks_distance=(
            None if scale is None else RowMaximum(sums.cooks.row, sums.cooks.value / scale)
        ),
        method="qr",
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


@dataclass(frozen=True)
class ReferenceFit:
    """The least-squares optimum a trained model is judged against."""

    coef: np.ndarray
    intercept: float
    sse: float
    condition_number: float
    method: str  # "qr" or "moments"


def reference_fit(
    columns: Sequence[np.ndarray],
    y: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    fit_intercept: bool = True,
) -> ReferenceFit:
    """Least squares of y on the columns, over `rows` (sorted row numbers) or every row.

    Long, well-conditioned data take the streaming sweeps (no [n, d] copy, no n-length
    arrays); the rest, and anything they decline, the exact QR analysis.
    """
    data = moment_sweeps.Data(columns, y, rows)
    if data.n >= MOMENTS_MIN_ROWS:
        fit = moment_sweeps.solve(data, fit_intercept=fit_intercept)
        if fit is not None:
            sse = moment_sweeps.residuals(data, fit).sse
            if np.isfinite(sse) and sse > MOMENTS_MIN_UNEXPLAINED * fit.sst:
                return ReferenceFit(fit.coef, fit.intercept, sse, fit.condition_number, "moments")
    x = np.empty((data.d, data.n)).T  # column-major: what the QR sweeps read fastest
    for j, column in enumerate(columns):
        if rows is None:
            x[:, j] = column
        else:
            np.take(column, rows, out=x[:, j])
    exact = fit_least_squares(x, y if rows is None else y[rows], fit_intercept=fit_intercept)
    return ReferenceFit(exact.coef, exact.intercept, exact.sse, exact.condition_number, "qr")
