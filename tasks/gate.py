"""Gate: stop before training when the features barely relate to the target.

One feature is judged by |Pearson r| and its t-test; several by the multiple correlation R of
the least-squares fit and its overall F test. Warnings (curvature, influential rows, rank
disagreement, ill-conditioning) never stop a run; they tell the user what a straight line on
this data will get wrong. Everything comes from one float64 least-squares summary
(``regflow.stats.fit_summary``: exact QR on short or awkward data, two streaming sweeps on long
well-conditioned columns) plus a sampled rank correlation, so ten million rows gate in well
under a second per feature. ``gate_from_partitions`` decides the same from sums merged over
Dask partitions; both end in ``gate_from_summary``.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.exceptions import MissingContextError

from regflow.io.text import name_list
from regflow.schemas.params import DEFAULT_ALPHA, DEFAULT_MIN_ABS_R
from regflow.schemas.results import FeatureCorrelation, GateReport, GateWarning
from regflow.stats.correlation import pearson, spearman_sampled
from regflow.stats.distributions import f_sf, r_two_sided_p
from regflow.stats.fit_summary import FitSummary, summarise_fit
from regflow.stats.fit_warnings import (
    conditioning_warning,
    curvature_warning,
    fmt,
    influence_warnings,
)
from regflow.stats.moment_sweeps import Moments

# Rank correlation on a seeded sample beyond this many rows: its standard error there, about
# 1/sqrt(rows) = 0.003, is a hundredth of the RANK_DISAGREEMENT that matters.
SPEARMAN_MAX_ROWS = 100_000
SPEARMAN_SEED = 0
RANK_DISAGREEMENT = 0.3  # |Pearson - Spearman| above which a feature is flagged
# A fit whose residual norm is this far below the target's spread is exact up to rounding:
# there is no residual structure to test.
PERFECT_FIT_RTOL = 1e-12


def _column_arrays(frame: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """float64 views of the columns (copies only for other dtypes): no [n, d] matrix."""
    arrays = []
    for name in columns:
        column = frame[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            raise ValueError(f"column '{name}' is not numeric (dtype {column.dtype})")
        arrays.append(column.to_numpy(dtype=np.float64))
    return arrays


def _check_finite(x: list[np.ndarray], y: np.ndarray, features: list[str], target: str) -> None:
    """Name the first column holding NaN or infinity (only called once something failed)."""
    for j, name in enumerate(features):
        bad = np.flatnonzero(~np.isfinite(x[j]))
        if bad.size:
            raise ValueError(
                f"feature '{name}' has {bad.size} NaN or infinite values"
                f" (first at row {bad[0] + 1})"
            )
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(
            f"target '{target}' has {bad.size} NaN or infinite values (first at row {bad[0] + 1})"
        )


def _decide(
    statistic: str,
    value: float,
    p_value: float,
    min_abs_r: float,
    alpha: float,
    subject: str,
) -> tuple[bool, str]:
    """passed, and a sentence naming the statistic, its value and the thresholds."""
    name = f"{statistic} = {fmt(value, min_abs_r)}{subject}"
    strong = value >= min_abs_r
    significant = p_value <= alpha
    p_text = fmt(p_value, alpha)
    if strong and significant:
        return True, (
            f"{name} is at least min_abs_r = {min_abs_r:g} and its p-value {p_text}"
            f" is at most alpha = {alpha:g}"
        )
    problems = []
    if not strong:
        problems.append(f"{name} is below min_abs_r = {min_abs_r:g}")
    if not significant:
        problems.append(
            f"p-value {p_text} of {statistic}{subject if strong else ''} is above alpha = {alpha:g}"
        )
    return False, "; ".join(problems)


def _feature_correlation(name: str, r: float, rho: float, n: int) -> FeatureCorrelation:
    """r with its t test (n - 2 df) and rho; undefined ones (a constant column) taken as 0."""
    defined = math.isfinite(r)
    return FeatureCorrelation(
        feature=name,
        r=r if defined else 0.0,
        p_value=r_two_sided_p(r, n - 2) if defined and n > 2 else 1.0,
        spearman=rho if math.isfinite(rho) else 0.0,
    )


@dataclass(frozen=True)
class ColumnRanges:
    """Each feature's minimum and maximum, and the target's (last): all the degenerate-input
    checks read, so that arrays and merged partition moments give the same reasons."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of_arrays(cls, x: list[np.ndarray], y: np.ndarray) -> ColumnRanges:
        columns = [*x, y]
        return cls(np.array([c.min() for c in columns]), np.array([c.max() for c in columns]))

    @classmethod
    def of_moments(cls, moments: Moments) -> ColumnRanges:
        return cls(moments.lo.copy(), moments.hi.copy())

    def all_flat(self, intercept: bool) -> bool:
        """Every feature constant (with an intercept) or zero (without): a fit of rank 0."""
        lo, hi = self.lo[:-1], self.hi[:-1]
        return bool(((lo == hi) & (intercept | (lo == 0.0))).all())


def _degenerate_reason(
    ranges: ColumnRanges,
    features: list[str],
    target: str,
    min_abs_r: float,
    *,
    all_flat: bool,
    intercept: bool = True,
) -> str | None:
    """Why the gate stops on a constant target or features, or None."""
    d = len(features)
    if ranges.lo[-1] == ranges.hi[-1]:
        return (
            f"the target '{target}' is constant (every row is {fmt(float(ranges.lo[-1]))}):"
            " there is no relationship to model"
        )
    if d == 1 and ranges.lo[0] == ranges.hi[0]:
        return (
            f"feature '{features[0]}' is constant (every row is {fmt(float(ranges.lo[0]))}):"
            f" |r| is undefined (taken as 0), below min_abs_r = {min_abs_r:g}"
        )
    if d > 1 and all_flat:
        state = "constant" if intercept else "zero"
        return f"all {d} features are {state}: R is 0, below min_abs_r = {min_abs_r:g}"
    return None


def rows_needed(d: int, fit_intercept: bool) -> int:
    """Fewest rows the gate's p-value needs: below it the gate stops without a fit."""
    return 3 if d == 1 and fit_intercept else d + 1 + (1 if fit_intercept else 0)


def _too_few_rows_report(
    correlations: list[FeatureCorrelation],
    ranges: ColumnRanges,
    n: int,
    features: list[str],
    target: str,
    *,
    min_abs_r: float,
    alpha: float,
    lead: int,
) -> GateReport:
    """The stop for fewer rows than the F test needs, from O(n) work per feature.

    No least-squares fit: R and the condition number are left undefined (NaN), and there are
    no warnings (curvature, leverage and rank disagreement mean little on so few rows).
    """
    d = len(features)
    needed = rows_needed(d, lead == 1)
    single = d == 1 and lead == 1
    label = "|r|" if single else "R"
    reason = _degenerate_reason(
        ranges,
        features,
        target,
        min_abs_r,
        all_flat=ranges.all_flat(lead == 1),
        intercept=lead == 1,
    ) or (
        f"too few rows for {d} feature{'s' if d > 1 else ''}: {n} row{'s' if n != 1 else ''}"
        f" but the p-value of {label} needs at least {needed}, so it is undefined"
        " (taken as 1.0)"
    )
    return GateReport(
        n_rows=n,
        features=correlations,
        multiple_r=math.nan,
        multiple_r_p_value=1.0,
        statistic="max_abs_r" if single else "R",
        value=abs(correlations[0].r) if single else math.nan,
        p_value=1.0,
        min_abs_r=min_abs_r,
        alpha=alpha,
        condition_number=math.nan,
        passed=False,
        reason=reason,
        warnings=[],
    )


def _check_arguments(features: list[str], target: str, min_abs_r: float, alpha: float) -> None:
    if not features:
        raise ValueError("the gate needs at least one feature")
    if target in features:
        raise ValueError(f"the target '{target}' is also listed as a feature")
    if len(set(features)) != len(features):
        raise ValueError("a feature is listed more than once")
    if not 0.0 <= min_abs_r <= 1.0:
        raise ValueError(f"min_abs_r must lie in [0, 1], got {min_abs_r}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")


def correlation_gate(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    *,
    min_abs_r: float = DEFAULT_MIN_ABS_R,
    alpha: float = DEFAULT_ALPHA,
    fit_intercept: bool = True,
) -> GateReport:
    """Decide whether the features relate strongly enough to the target to train a model."""
    features = [str(name) for name in features]
    if not features:
        raise ValueError("the gate needs at least one feature")
    missing = [name for name in [*features, target] if name not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the data: {name_list(missing)}")
    _check_arguments(features, target, min_abs_r, alpha)
    n = len(frame)
    if n < 1:
        raise ValueError("the gate needs at least one row")

    x = _column_arrays(frame, features)
    y = _column_arrays(frame, [target])[0]
    if n < rows_needed(len(features), fit_intercept):
        # Cheap conditions first: the least-squares summary costs O(d^3) on wide data (40 rows
        # by 10,000 features took 22 minutes) and cannot change this decision.
        if not (np.isfinite(y).all() and all(np.isfinite(column).all() for column in x)):
            _check_finite(x, y, features, target)
        rhos, _ = spearman_sampled(x, y, SPEARMAN_MAX_ROWS, SPEARMAN_SEED)
        correlations = [
            _feature_correlation(name, pearson(x[j], y), float(rhos[j]), n)
            for j, name in enumerate(features)
        ]
        return _too_few_rows_report(
            correlations,
            ColumnRanges.of_arrays(x, y),
            n,
            features,
            target,
            min_abs_r=min_abs_r,
            alpha=alpha,
            lead=1 if fit_intercept else 0,
        )
    # The sampled rank correlation runs beside the least-squares sweeps (numpy releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        ranked = pool.submit(spearman_sampled, x, y, SPEARMAN_MAX_ROWS, SPEARMAN_SEED)
        try:
            fit = summarise_fit(x, y, fit_intercept=fit_intercept)
        except ValueError:
            _check_finite(x, y, features, target)
            raise
        spearman, spearman_rows = ranked.result()
    return gate_from_summary(
        fit,
        ColumnRanges.of_arrays(x, y),
        spearman,
        spearman_rows,
        features,
        target,
        min_abs_r=min_abs_r,
        alpha=alpha,
    )


def gate_from_summary(
    fit: FitSummary,
    ranges: ColumnRanges,
    spearman: np.ndarray,
    spearman_rows: int,
    features: list[str],
    target: str,
    *,
    min_abs_r: float,
    alpha: float,
) -> GateReport:
    """The decision and warnings from a fit summary (local, or merged over partitions).

    spearman holds each feature's rank correlation with the target, taken on spearman_rows
    rows (a seeded sample where that is fewer than fit.n; the rank-disagreement note says so).
    The caller has checked the arguments and that fit.n is at least rows_needed(...).
    """
    n, d, fit_intercept = fit.n, len(features), fit.fit_intercept
    lead = 1 if fit_intercept else 0

    # Per-feature Pearson r (t test, n - 2 df) and Spearman rho.
    correlations = [
        _feature_correlation(name, float(fit.correlations[j]), float(spearman[j]), n)
        for j, name in enumerate(features)
    ]

    # Multiple correlation and its overall F test (df1 = rank, df2 = n - rank - intercept).
    multiple_r = math.sqrt(fit.r2)
    df1 = fit.rank
    df2 = n - fit.rank - lead
    explained = max(fit.sst - fit.sse, 0.0)
    if df1 == 0 or df2 <= 0 or explained == 0.0:
        multiple_p = 1.0
    elif fit.sse <= 0.0:
        multiple_p = 0.0
    else:
        multiple_p = f_sf((explained / df1) / (fit.sse / df2), float(df1), float(df2))

    y_constant = bool(ranges.lo[-1] == ranges.hi[-1])
    perfect = fit.sst > 0.0 and fit.sse <= (PERFECT_FIT_RTOL**2) * fit.sst
    # Through the origin the model's relationship is the uncentred one: a line forced through
    # (0, 0) can fit well where the centred Pearson r (about a free intercept) says little.
    if d == 1 and fit_intercept:
        statistic = "max_abs_r"
        value = abs(correlations[0].r)
        p_value = correlations[0].p_value
        subject = f" for '{features[0]}'"
        label = "|r|"
    else:
        statistic = "R"
        value = multiple_r
        p_value = multiple_p
        subject = f" for the {d} features" if d > 1 else f" for '{features[0]}' through the origin"
        label = "R"

    stop = _degenerate_reason(
        ranges, features, target, min_abs_r, all_flat=fit.rank == 0, intercept=fit_intercept
    )
    if stop is not None:
        passed, reason = False, stop
    else:
        passed, reason = _decide(label, value, p_value, min_abs_r, alpha, subject)

    warnings: list[GateWarning] = []
    if not y_constant and not perfect:
        curved = curvature_warning(fit, features, alpha)
        if curved is not None:
            warnings.append(curved)
    warnings.extend(influence_warnings(fit, perfect or y_constant))
    sample_note = (
        f" (Spearman on a seeded random sample of {spearman_rows:,} of {n:,} rows)"
        if spearman_rows < n
        else ""
    )
    for j, item in enumerate(correlations):
        if not math.isfinite(float(fit.correlations[j])):
            continue
        gap = abs(item.r - item.spearman)
        if gap > RANK_DISAGREEMENT:
            warnings.append(
                GateWarning(
                    kind="rank_disagreement",
                    message=(
                        f"'{item.feature}': Pearson r = {item.r:.3f} but Spearman rank"
                        f" correlation = {item.spearman:.3f}{sample_note}: the relationship is"
                        " monotone but not linear, or a few extreme rows drive r"
                    ),
                    feature=item.feature,
                    value=gap,
                )
            )
    conditioning = conditioning_warning(fit, features)
    if conditioning is not None:
        warnings.append(conditioning)

    return GateReport(
        n_rows=n,
        features=correlations,
        multiple_r=multiple_r,
        multiple_r_p_value=multiple_p,
        statistic=statistic,
        value=value,
        p_value=p_value,
        min_abs_r=min_abs_r,
        alpha=alpha,
        condition_number=fit.condition_number,
        passed=passed,
        reason=reason,
        warnings=warnings,
    )


def gate_from_partitions(
    moments: Moments,
    summary: FitSummary | None,
    spearman: np.ndarray,
    spearman_rows: int,
    features: list[str],
    target: str,
    *,
    min_abs_r: float = DEFAULT_MIN_ABS_R,
    alpha: float = DEFAULT_ALPHA,
    fit_intercept: bool = True,
) -> GateReport:
    """correlation_gate from sums merged over partitions, never from the whole columns.

    moments: ``moment_sweeps.partition_moments`` of every partition, merged. summary: the
    merged fit, from ``fit_summary.summary_from_sweeps`` (moment route) or, where that or
    ``solve_moments`` gives None, ``fit_summary.summary_from_qr`` (tall-skinny QR route); it
    may be None only below rows_needed(len(features), fit_intercept) rows, where the gate
    stops without a fit (its correlations then come from the moments). spearman: each
    feature's rank correlation on spearman_rows rows (a seeded sample of the rows).
    """
    features = [str(name) for name in features]
    _check_arguments(features, target, min_abs_r, alpha)
    n = moments.count
    if n < 1:
        raise ValueError("the gate needs at least one row")
    ranges = ColumnRanges.of_moments(moments)
    finite = np.isfinite(ranges.lo) & np.isfinite(ranges.hi)
    if not finite.all():
        name = [*features, target][int(np.flatnonzero(~finite)[0])]
        kind = "target" if name == target else "feature"
        raise ValueError(f"{kind} '{name}' has NaN or infinite values")
    if n < rows_needed(len(features), fit_intercept):
        correlations = [
            _feature_correlation(name, float(r), float(spearman[j]), n)
            for j, (name, r) in enumerate(zip(features, moments.correlations(), strict=True))
        ]
        return _too_few_rows_report(
            correlations,
            ranges,
            n,
            features,
            target,
            min_abs_r=min_abs_r,
            alpha=alpha,
            lead=1 if fit_intercept else 0,
        )
    if summary is None:
        raise ValueError(
            f"a fit summary is needed from {rows_needed(len(features), fit_intercept)} rows on"
        )
    return gate_from_summary(
        summary, ranges, spearman, spearman_rows, features, target, min_abs_r=min_abs_r, alpha=alpha
    )


@task(name="correlation-gate", cache_policy=NONE, persist_result=False)
def gate_task(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    *,
    min_abs_r: float = DEFAULT_MIN_ABS_R,
    alpha: float = DEFAULT_ALPHA,
    fit_intercept: bool = True,
) -> GateReport:
    """Prefect task around correlation_gate (pure, so no retries)."""
    report = correlation_gate(
        frame, features, target, min_abs_r=min_abs_r, alpha=alpha, fit_intercept=fit_intercept
    )
    try:
        logger: logging.Logger | logging.LoggerAdapter = get_run_logger()
    except MissingContextError:  # gate_task.fn called outside a run (tests, notebooks)
        logger = logging.getLogger(__name__)
    # One line for the decision; the warnings travel in the report (the flow logs them).
    logger.info(
        "gate %s: %s (%d warning%s)",
        report.decision,
        report.reason,
        len(report.warnings),
        "" if len(report.warnings) == 1 else "s",
    )
    return report
