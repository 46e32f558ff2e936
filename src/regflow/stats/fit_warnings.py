"""The gate's warnings about a least-squares fit: curvature, influential rows, conditioning.

They never stop a run; they tell the user what a straight line on this data will get wrong.
Each reads a ``FitSummary`` only, so the local gate and the partition-wise one (merged sums
from Dask partitions) warn alike.
"""

from __future__ import annotations

import math

import numpy as np

from regflow.io.text import name_list
from regflow.schemas.results import GateWarning
from regflow.stats.distributions import f_sf
from regflow.stats.fit_summary import FitSummary

__all__ = [
    "CURVATURE_MIN_SHARE",
    "HIGH_COOKS_DISTANCE",
    "HIGH_LEVERAGE",
    "ILL_CONDITIONED",
    "conditioning_warning",
    "curvature_warning",
    "fmt",
    "influence_warnings",
]

CURVATURE_MIN_SHARE = 0.01  # share of the SSE the curvature term must remove to matter
HIGH_LEVERAGE = 0.99
HIGH_COOKS_DISTANCE = 1.0
ILL_CONDITIONED = 1e7


def fmt(value: float, threshold: float | None = None) -> str:
    """3 significant digits, more when needed to tell value and threshold apart."""
    if not math.isfinite(value):
        return str(value)
    for digits in range(3, 18):
        text = f"{value:.{digits}g}"
        if threshold is None or value == threshold or text != f"{threshold:.{digits}g}":
            return text
    return repr(value)


def curvature_warning(fit: FitSummary, features: list[str], alpha: float) -> GateWarning | None:
    """Ramsey's RESET: does the square of the fitted values explain what the line missed?"""
    curvature = fit.curvature
    if curvature is None or fit.sse <= 0.0:
        return None
    removed = curvature.ss_reduction
    share = removed / fit.sse
    if share < CURVATURE_MIN_SHARE:
        return None
    remaining = fit.sse - removed
    statistic = math.inf if remaining <= 0.0 else removed / (remaining / curvature.df_resid)
    p_value = f_sf(statistic, 1.0, float(curvature.df_resid))
    if not p_value < alpha:
        return None
    term = (
        f"a squared term of '{features[0]}'"
        if len(features) == 1
        else "the squared fitted values (RESET test)"
    )
    return GateWarning(
        kind="curvature",
        message=(
            f"the relationship looks curved: adding {term} removes {share:.1%} of the residual"
            f" sum of squares (p-value {fmt(p_value)}); a straight line will miss that part;"
            " consider transforming the features or adding polynomial terms"
        ),
        value=share,
    )


def influence_warnings(fit: FitSummary, perfect: bool) -> list[GateWarning]:
    warnings: list[GateWarning] = []
    leverage = fit.max_leverage
    if leverage.value >= HIGH_LEVERAGE:
        warnings.append(
            GateWarning(
                kind="influential_point",
                message=(
                    f"row {leverage.row + 1} has leverage {fmt(leverage.value)}"
                    f" (>= {HIGH_LEVERAGE}): its feature values are so far from the rest that the"
                    " fitted line must pass through it; check that row"
                ),
                value=leverage.value,
            )
        )
    cooks = fit.max_cooks_distance
    if perfect or cooks is None:
        return warnings  # Cook's distance needs a residual variance
    if cooks.value > HIGH_COOKS_DISTANCE:
        warnings.append(
            GateWarning(
                kind="influential_point",
                message=(
                    f"row {cooks.row + 1} has Cook's distance {fmt(cooks.value)}"
                    f" (> {HIGH_COOKS_DISTANCE:g}): that one row moves the fitted coefficients"
                    " noticeably; check it for a data error"
                ),
                value=cooks.value,
            )
        )
    return warnings


def conditioning_warning(fit: FitSummary, features: list[str]) -> GateWarning | None:
    d = len(features)
    condition = fit.condition_number
    if fit.rank < d:
        constant = [features[j] for j in np.flatnonzero(fit.constant_columns)]
        involved = np.flatnonzero(
            (np.abs(fit.null_space) > 0.1).any(axis=1) & ~fit.constant_columns
        )
        parts = []
        if constant:
            parts.append(f"constant: {name_list(constant)}")
        if involved.size:
            parts.append(f"linearly dependent: {name_list(features[j] for j in involved)}")
        return GateWarning(
            kind="ill_conditioned",
            message=(
                f"the features are collinear: the design has rank {fit.rank} but {d} features"
                f" ({'; '.join(parts)}); their separate coefficients cannot be determined"
                " (the reference fit reports a minimum-norm solution); drop or combine them"
            ),
            value=condition,
        )
    if condition > ILL_CONDITIONED:
        digits = max(0.0, 16.0 - math.log10(condition))
        return GateWarning(
            kind="ill_conditioned",
            message=(
                f"the design is ill-conditioned (condition number {fmt(condition)} after"
                " centring and scaling): float32 training cannot reach the least-squares"
                f" coefficients, and even float64 results keep only about {digits:.0f}"
                " significant digits (16 - log10(condition number)); nearly collinear"
                " features (e.g. x and x**2 far from 0) are the usual cause"
            ),
            value=condition,
        )
    return None
