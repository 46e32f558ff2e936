"""Evaluate: true against predicted for every row, metrics per split, and the float64 optimum."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regflow.errors import TrainingDidNotConvergeError
from regflow.schemas.frames import SplitPlan, ValidatedData
from regflow.schemas.results import Evaluation, Split, TrainResult
from regflow.stats.fit_summary import reference_fit
from regflow.stats.linear_predictions import linear_predictions
from regflow.stats.metrics import split_metrics
from regflow.stats.splitting import holdout_mask, sample_fraction, sampled_rows, split_column
from regflow.tasks.gate import SPEARMAN_MAX_ROWS
from regflow.tasks.outcomes import pipeline_task

MIN_ROWS_FOR_HOLDOUT = 30
MIN_TRAIN_ROWS = 3  # fewer left to train on: no holdout
# Below ~8 trustworthy digits in float64 the reference itself is not a reference.
TRUSTED_CONDITION = 1e8
# Rows drawn (seeded, by position) for both engines' drift summaries and, on the dask engine,
# for Spearman and the plots: as many as the local gate's Spearman takes.
SAMPLE_ROWS = SPEARMAN_MAX_ROWS
EXACT_FIT = 1e-24  # optimum MSE relative to mean(y^2) below which the fit is exact


def no_holdout_reason(n_rows: int, holdout: float) -> str | None:
    """Why there is no holdout before any row is drawn, or None."""
    if holdout <= 0:
        return "no holdout requested: trained and evaluated on all rows"
    if n_rows < MIN_ROWS_FOR_HOLDOUT:
        return (
            f"only {n_rows} rows (< {MIN_ROWS_FOR_HOLDOUT}): no holdout, "
            "trained and evaluated on all rows"
        )
    return None


def summary_rows(valid: ValidatedData, train_rows: np.ndarray | None) -> np.ndarray | None:
    """The rows the card's drift summaries describe: the training rows, or about SAMPLE_ROWS
    of them drawn by position, the rows the dask engine's sample holds (so both engines write
    the same summaries). Quantiles of 10M rows cost seconds; of 100k, milliseconds."""
    positions = kept_positions(valid)
    where = np.arange(len(valid.frame)) if positions is None else positions
    fraction = sample_fraction(valid.rows_read, SAMPLE_ROWS)
    return sampled_rows(where, fraction, among=train_rows)


def kept_positions(valid: ValidatedData) -> np.ndarray | None:
    """The rows' positions in the data as read when quarantine set some aside (the holdout
    is drawn by position in the file, so setting a row aside moves no other row), else None."""
    if valid.rejected is None or valid.rejected.empty:
        return None
    rejected = valid.rejected["row"].to_numpy(dtype=np.int64) - 1
    return np.setdiff1d(np.arange(valid.rows_read, dtype=np.int64), rejected)


def make_split(
    n_rows: int, holdout: float, seed: int, positions: np.ndarray | None = None
) -> SplitPlan:
    """Train and holdout rows; `positions` are the rows' global positions (0..n-1 by default).

    Each row is held out or not by holdout_mask, a function of its position and the seed
    alone, so the rows of a partition get the same split as in the whole table.
    """
    reason = no_holdout_reason(n_rows, holdout)
    if reason is not None:
        return SplitPlan(n_rows, None, None, reason)
    where = np.arange(n_rows) if positions is None else positions
    if len(where) != n_rows:
        raise ValueError(f"{len(where)} positions for {n_rows} rows")
    held = holdout_mask(where, seed, holdout)
    count = int(np.count_nonzero(held))
    kept, note = holdout_outcome(n_rows, count, holdout, seed)
    if not kept:
        return SplitPlan(n_rows, None, None, note)
    return SplitPlan(n_rows, np.flatnonzero(~held), np.flatnonzero(held), note)


def holdout_outcome(n_rows: int, held: int, holdout: float, seed: int) -> tuple[bool, str]:
    """Whether the rows holdout_mask picked make a holdout, and the note that says so.

    Decided from the counts alone, so a partitioned run decides it from summed counts.
    """
    asked = f"holdout {holdout:g} of {n_rows} rows, seed {seed}"
    if held == 0:
        return False, f"{asked} picked no row: no holdout, trained and evaluated on all rows"
    if n_rows - held < MIN_TRAIN_ROWS:
        return False, (
            f"{asked} left {n_rows - held} rows (< {MIN_TRAIN_ROWS}) to train on: no holdout, "
            "trained and evaluated on all rows"
        )
    # Each row is drawn independently: the share held out is about, not exactly, the fraction.
    return True, (
        f"holdout: {held} of {n_rows} rows ({held / n_rows:.0%}; about {holdout:.0%} asked, "
        f"seed {seed}) never seen in training"
    )


def predict(frame: pd.DataFrame, coefficients: dict[str, float], intercept: float) -> np.ndarray:
    """Predictions in original units, float64, one column at a time (no matrix copy)."""
    return linear_predictions(frame, list(coefficients), list(coefficients.values()), intercept)


def _split_column(plan: SplitPlan) -> pd.Categorical[str]:
    """plan.labels() as a categorical (see split_column)."""
    if plan.holdout_rows is None:
        return split_column(None, plan.n_rows)
    held = np.zeros(plan.n_rows, dtype=bool)
    held[plan.holdout_rows] = True
    return split_column(held, plan.n_rows)


def check_optimality(evaluation: Evaluation, max_gap: float | None, aims_at_optimum: bool) -> None:
    """Fail a run that was meant to reach the optimum and stopped short of it.

    Unchecked: runs that do not aim at the optimum (the seed preset: reported only), an
    untrusted reference (ill-conditioned) and an exact fit, which has no relative gap.
    """
    gap = evaluation.optimality_gap
    if max_gap is None or not aims_at_optimum or not evaluation.reference_trusted:
        return
    if gap is None or gap <= max_gap:  # a NaN gap is not <=: it fails
        return
    raise TrainingDidNotConvergeError(
        f"training did not converge: the model's {evaluation.fit_split} MSE "
        f"{evaluation.model_mse:.6g} is {gap:.3g} (relative) above the least-squares optimum "
        f"{evaluation.ols_mse:.6g}, beyond the tolerance {max_gap:g}; try --preset default, "
        "--dtype float64 or more --epochs, or raise --max-optimality-gap deliberately"
    )


def evaluate_model(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    trained: TrainResult,
    plan: SplitPlan,
    max_optimality_gap: float | None = None,
    aims_at_optimum: bool = True,
) -> tuple[Evaluation, pd.DataFrame]:
    """Metrics and the optimum; a run short of the optimum fails (see check_optimality)."""
    y = frame[target].to_numpy(dtype=np.float64)
    predicted = predict(frame, trained.coefficients, trained.intercept)
    groups: dict[Split, np.ndarray | None] = {"all": None}
    if plan.holdout_rows is not None:
        groups = {"train": plan.train_rows, "holdout": plan.holdout_rows, "all": None}
    metrics = {name: split_metrics(name, y, predicted, rows) for name, rows in groups.items()}
    fit_rows = plan.train_rows
    # Streaming on long well-conditioned data (no copy of the feature matrix), exact QR else.
    reference = reference_fit(
        [frame[name].to_numpy(dtype=np.float64) for name in features],
        y,
        rows=fit_rows,
        fit_intercept=trained.fit_intercept,
    )
    n_fit = len(y) if fit_rows is None else len(fit_rows)
    ols_mse = reference.sse / n_fit
    model_mse = metrics[plan.fit_split].mse
    gap_abs = model_mse - ols_mse
    # An exact fit has no relative gap: only the absolute one means something there.
    y_fit = y if fit_rows is None else y[fit_rows]
    scale = float(np.einsum("i,i->", y_fit, y_fit)) / n_fit or 1.0  # mean(y^2), no temporary
    gap = gap_abs / ols_mse if ols_mse > EXACT_FIT * scale else None
    evaluation = Evaluation(
        metrics=metrics,
        fit_split=plan.fit_split,
        holdout_note=plan.note,
        ols_coefficients=dict(zip(features, reference.coef.tolist(), strict=True)),
        ols_intercept=reference.intercept,
        ols_mse=ols_mse,
        model_mse=model_mse,
        optimality_gap=gap,
        optimality_gap_abs=gap_abs,
        reference_condition_number=reference.condition_number,
        reference_trusted=reference.condition_number < TRUSTED_CONDITION,
    )
    del y_fit
    check_optimality(evaluation, max_optimality_gap, aims_at_optimum)
    # No copies: predicted and residual are this function's own; y is a read-only view of the
    # validated frame, so an in-place edit of the predictions raises instead of reaching it.
    predictions = pd.DataFrame(
        {
            "true": y,
            "predicted": predicted,
            "residual": y - predicted,
            "split": _split_column(plan),
        },
        copy=False,
    )
    return evaluation, predictions


evaluate_task = pipeline_task(evaluate_model, name="evaluate")
