"""Evaluate: true against predicted for every row, metrics per split, and the float64 optimum."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regflow.schemas.frames import SplitPlan
from regflow.schemas.results import Evaluation, Split, SplitMetrics, TrainResult
from regflow.stats.fit_summary import reference_fit
from regflow.stats.linear_predictions import linear_predictions
from regflow.tasks.outcomes import pipeline_task

MIN_ROWS_FOR_HOLDOUT = 30
# Below ~8 trustworthy digits in float64 the reference itself is not a reference.
TRUSTED_CONDITION = 1e8
EXACT_FIT = 1e-24  # optimum MSE relative to mean(y^2) below which the fit is exact


def make_split(n_rows: int, holdout: float, seed: int) -> SplitPlan:
    if holdout <= 0:
        return SplitPlan(
            n_rows, None, None, "no holdout requested: trained and evaluated on all rows"
        )
    if n_rows < MIN_ROWS_FOR_HOLDOUT:
        return SplitPlan(
            n_rows,
            None,
            None,
            f"only {n_rows} rows (< {MIN_ROWS_FOR_HOLDOUT}): no holdout, "
            "trained and evaluated on all rows",
        )
    count = min(max(1, round(n_rows * holdout)), n_rows - 3)
    order = np.random.default_rng(seed).permutation(n_rows)
    # The same sorted row sets as sorting both halves of the permutation, in O(n): a mask.
    held = np.zeros(n_rows, dtype=bool)
    held[order[:count]] = True
    del order
    return SplitPlan(
        n_rows,
        np.flatnonzero(~held),
        np.flatnonzero(held),
        f"holdout: {count} of {n_rows} rows ({holdout:.0%}, seed {seed}) never seen in training",
    )


BLOCK_ROWS = 1 << 17  # 1 MiB of float64: block temporaries stay in cache, no fresh pages


def _block_starts(n: int) -> range:
    return range(0, n, BLOCK_ROWS)


def predict(frame: pd.DataFrame, coefficients: dict[str, float], intercept: float) -> np.ndarray:
    """Predictions in original units, float64, one column at a time (no matrix copy)."""
    return linear_predictions(frame, list(coefficients), list(coefficients.values()), intercept)


def _metrics(
    split: Split, y: np.ndarray, predicted: np.ndarray, rows: np.ndarray | None
) -> SplitMetrics:
    """Metrics over y[rows] (all rows when None), block by block: no full-length temporaries.

    Whole-array expressions (residual, its square, its absolute value, the centred target)
    each allocated n floats; at 10M rows their page faults cost more than the arithmetic.
    """
    n = len(y) if rows is None else len(rows)
    size = min(BLOCK_ROWS, n)
    y_block, p_block = np.empty(size), np.empty(size)
    sum_y = sse = sae = 0.0
    blocks = []
    for start in _block_starts(n):
        stop = min(start + BLOCK_ROWS, n)
        blocks.append((start, stop))
    for start, stop in blocks:
        yb = (
            y[start:stop]
            if rows is None
            else np.take(y, rows[start:stop], out=y_block[: stop - start])
        )
        sum_y += float(yb.sum())
    mean = sum_y / n if n else float("nan")
    centred = 0.0
    for start, stop in blocks:
        k = stop - start
        yb = y[start:stop] if rows is None else np.take(y, rows[start:stop], out=y_block[:k])
        pb = (
            predicted[start:stop]
            if rows is None
            else np.take(predicted, rows[start:stop], out=p_block[:k])
        )
        residual = np.subtract(yb, pb, out=p_block[:k])
        sae += float(np.abs(residual).sum())
        np.multiply(residual, residual, out=residual)
        sse += float(residual.sum())
        deviation = np.subtract(yb, mean, out=y_block[:k])
        np.multiply(deviation, deviation, out=deviation)
        centred += float(deviation.sum())
    mse = sse / n if n else float("nan")
    r2 = 1.0 - sse / centred if centred > 0 else float("nan")
    return SplitMetrics(
        split=split,
        n=n,
        mse=mse,
        rmse=float(np.sqrt(mse)),
        mae=sae / n if n else float("nan"),
        r2=r2,
    )


def split_metrics(split: Split, y: np.ndarray, predicted: np.ndarray) -> SplitMetrics:
    return _metrics(split, y, predicted, None)


def _split_column(plan: SplitPlan) -> pd.Categorical[str]:
    """plan.labels() as a categorical: one byte a row, built by index.

    A column of 10M strings took 0.6 s to build and made the Parquet file slower to write.
    The categories are sorted, so grouping by split keeps the alphabetical order of strings.
    """
    if plan.holdout_rows is None:
        return pd.Categorical.from_codes(np.zeros(plan.n_rows, dtype=np.int8), pd.Index(["all"]))
    codes = np.ones(plan.n_rows, dtype=np.int8)  # "train"
    codes[plan.holdout_rows] = 0
    return pd.Categorical.from_codes(codes, pd.Index(["holdout", "train"]))


def evaluate_model(
    frame: pd.DataFrame, features: list[str], target: str, trained: TrainResult, plan: SplitPlan
) -> tuple[Evaluation, pd.DataFrame]:
    y = frame[target].to_numpy(dtype=np.float64)
    predicted = predict(frame, trained.coefficients, trained.intercept)
    groups: dict[Split, np.ndarray | None] = {"all": None}
    if plan.holdout_rows is not None:
        groups = {"train": plan.train_rows, "holdout": plan.holdout_rows, "all": None}
    metrics = {name: _metrics(name, y, predicted, rows) for name, rows in groups.items()}
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
