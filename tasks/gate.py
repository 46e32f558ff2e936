"""Gate: stop before training when the features barely relate to the target.

One feature is judged by |Pearson r| and its t-test; several by the multiple correlation R of
the least-squares fit and its overall F test. Warnings (curvature, influential rows, rank
disagreement, ill-conditioning) never stop a run; they tell the user what a straight line on
this data will get wrong. Everything comes from one float64 least-squares summary
(``regflow.stats.fit_summary``: exact QR on short or awkward data, two streaming sweeps on long
well-conditioned columns) plus a sampled rank correlation, so ten million rows gate in well
under a second per feature.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor

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

# Rank correlation on a seeded sample beyond this many rows: its standard error there, about
# 1/sqrt(rows) = 0.003, is a hundredth of the RANK_DISAGREEMENT that matters.
SPEARMAN_MAX_ROWS = 100_000
SPEARMAN_SEED = 0
RANK_DISAGREEMENT = 0.3  # |Pearson - Spearman| above which a feature is flagged
CURVATURE_MIN_SHARE = 0.01  # share of the SSE the curvature term must remove to matter
HIGH_LEVERAGE = 0.99
HIGH_COOKS_DISTANCE = 1.0
ILL_CONDITIONED = 1e7
# A fit whose residual norm is this far below the target's spread is exact up to rounding:
# there is no residual structure to test.
PERFECT_FIT_RTOL = 1e-12


def _fmt(value: float, threshold: float | None = None) -> str:
    """3 significant digits, more when needed to tell value and threshold apart."""
    if not math.isfinite(value):
        return str(value)
    for digits in range(3, 18):
        text = f"{value:.{digits}g}"
        if threshold is None or value == threshold or text != f"{threshold:.{digits}g}":
            return text
    return repr(value)


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


def _curvature_warning(fit: FitSummary, features: list[str], alpha: float) -> GateWarning | None:
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
            f" sum of squares (p-value {_fmt(p_value)}); a straight line will miss that part;"
            " consider transforming the features or adding polynomial terms"
        ),
        value=share,
    )


def _influence_warnings(fit: FitSummary, perfect: bool) -> list[GateWarning]:
    warnings: list[GateWarning] = []
    leverage = fit.max_leverage
    if leverage.value >= HIGH_LEVERAGE:
        warnings.append(
            GateWarning(
                kind="influential_point",
                message=(
                    f"row {leverage.row + 1} has leverage {_fmt(leverage.value)}"
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
                    f"row {cooks.row + 1} has Cook's distance {_fmt(cooks.value)}"
                    f" (> {HIGH_COOKS_DISTANCE:g}): that one row moves the fitted coefficients"
                    " noticeably; check it for a data error"
                ),
                value=cooks.value,
            )
        )
    return warnings


def _conditioning_warning(fit: FitSummary, features: list[str]) -> GateWarning | None:
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
                f"the design is ill-conditioned (condition number {_fmt(condition)} after"
                " centring and scaling): float32 training cannot reach the least-squares"
                f" coefficients, and even float64 results keep only about {digits:.0f}"
                " significant digits (16 - log10(condition number)); nearly collinear"
                " features (e.g. x and x**2 far from 0) are the usual cause"
            ),
            value=condition,
        )
    return None


def _decide(
    statistic: str,
    value: float,
    p_value: float,
    min_abs_r: float,
    alpha: float,
    subject: str,
) -> tuple[bool, str]:
    """passed, and a sentence naming the statistic, its value and the thresholds."""
    name = f"{statistic} = {_fmt(value, min_abs_r)}{subject}"
    strong = value >= min_abs_r
    significant = p_value <= alpha
    p_text = _fmt(p_value, alpha)
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


def _degenerate_reason(
    x: list[np.ndarray],
    y: np.ndarray,
    features: list[str],
    target: str,
    min_abs_r: float,
    *,
    all_flat: bool,
    intercept: bool = True,
) -> str | None:
    """Why the gate stops on a constant target or features, or None (all O(n) per column)."""
    d = len(features)
    if y.min() == y.max():
        return (
            f"the target '{target}' is constant (every row is {_fmt(float(y[0]))}):"
            " there is no relationship to model"
        )
    if d == 1 and x[0].min() == x[0].max():
        return (
            f"feature '{features[0]}' is constant (every row is {_fmt(float(x[0][0]))}):"
            f" |r| is undefined (taken as 0), below min_abs_r = {min_abs_r:g}"
        )
    if d > 1 and all_flat:
        state = "constant" if intercept else "zero"
        return f"all {d} features are {state}: R is 0, below min_abs_r = {min_abs_r:g}"
    return None


def _too_few_rows_report(
    x: list[np.ndarray],
    y: np.ndarray,
    features: list[str],
    target: str,
    needed: int,
    *,
    min_abs_r: float,
    alpha: float,
    lead: int,
) -> GateReport:
    """The stop for fewer rows than the F test needs, from O(n) work per feature.

    No least-squares fit: R and the condition number are left undefined (NaN), and there are
    no warnings (curvature, leverage and rank disagreement mean little on so few rows).
    """
    n, d = y.shape[0], len(features)
    if not (np.isfinite(y).all() and all(np.isfinite(column).all() for column in x)):
        _check_finite(x, y, features, target)
    rhos, _ = spearman_sampled(x, y, SPEARMAN_MAX_ROWS, SPEARMAN_SEED)
    correlations = [
        _feature_correlation(name, pearson(x[j], y), float(rhos[j]), n)
        for j, name in enumerate(features)
    ]
    single = d == 1 and lead == 1
    label = "|r|" if single else "R"
    # The fit's rank is 0 exactly when every centred column (every column, through the
    # origin) is zero.
    flat = all((c.min() == c.max()) and (lead == 1 or c[0] == 0.0) for c in x)
    reason = _degenerate_reason(
        x, y, features, target, min_abs_r, all_flat=flat, intercept=lead == 1
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
    if target in features:
        raise ValueError(f"the target '{target}' is also listed as a feature")
    if len(set(features)) != len(features):
        raise ValueError("a feature is listed more than once")
    if not 0.0 <= min_abs_r <= 1.0:
        raise ValueError(f"min_abs_r must lie in [0, 1], got {min_abs_r}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    n = len(frame)
    d = len(features)
    if n < 1:
        raise ValueError("the gate needs at least one row")

    x = _column_arrays(frame, features)
    y = _column_arrays(frame, [target])[0]
    lead = 1 if fit_intercept else 0
    needed = 3 if d == 1 and fit_intercept else d + 1 + lead
    if n < needed:
        # Cheap conditions first: the least-squares summary costs O(d^3) on wide data (40 rows
        # by 10,000 features took 22 minutes) and cannot change this decision.
        return _too_few_rows_report(
            x, y, features, target, needed, min_abs_r=min_abs_r, alpha=alpha, lead=lead
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

    y_constant = bool(y.min() == y.max())
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
        x, y, features, target, min_abs_r, all_flat=fit.rank == 0, intercept=fit_intercept
    )
    if stop is not None:
        passed, reason = False, stop
    else:
        passed, reason = _decide(label, value, p_value, min_abs_r, alpha, subject)

    warnings: list[GateWarning] = []
    if not y_constant and not perfect:
        curved = _curvature_warning(fit, features, alpha)
        if curved is not None:
            warnings.append(curved)
    warnings.extend(_influence_warnings(fit, perfect or y_constant))
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
    conditioning = _conditioning_warning(fit, features)
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
