"""Register: the published run becomes a registry version; champion/challenger decides promotion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regflow.registry import (
    AliasConflict,
    ModelVersion,
    Registry,
    decide_promotion,
)
from regflow.schemas.promotion import PromotionResult
from regflow.tasks.evaluate import split_metrics
from regflow.tasks.outcomes import pipeline_task

CHAMPION = "champion"
CAS_ATTEMPTS = 3  # another run may move the champion between our read and our write


def registry_location(registry: str | None) -> str:
    """Where the registry is (after $REGFLOW_REGISTRY and the default are applied)."""
    with Registry.open(registry) as reg:
        return reg.location


def register_model(
    registry: str | None, name: str, run_dir: str, actor: str | None
) -> ModelVersion:
    with Registry.open(registry) as reg:
        return reg.register(name, run_dir, actor=actor)


def _metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    m = split_metrics("all", y, predicted)
    return {"mse": m.mse, "rmse": m.rmse, "mae": m.mae, "r2": m.r2, "n": float(m.n)}


def champion_challenger(
    registry: str | None,
    challenger: ModelVersion,
    frame: pd.DataFrame,
    target: str,
    challenger_predictions: np.ndarray,
    eval_rows: np.ndarray | None,
    *,
    min_r2: float = 0.0,
    min_improvement: float = 0.0,
    actor: str | None = None,
) -> PromotionResult:
    """Score challenger and champion on the same evaluation rows; promote by the rules."""

    def on_eval_rows(values: np.ndarray) -> np.ndarray:
        return values if eval_rows is None else values[eval_rows]

    # Whole columns, then the evaluation rows: gathering every column's rows into a new
    # frame first took longer than predicting them all.
    y = on_eval_rows(frame[target].to_numpy(dtype=np.float64))
    mine = on_eval_rows(challenger_predictions)
    challenger_metrics = _metrics(y, mine)
    evaluated_on = "holdout" if eval_rows is not None else "all"
    with Registry.open(registry) as reg:
        before = reg.get_alias(challenger.name, CHAMPION)
        for _ in range(CAS_ATTEMPTS):
            current = reg.get_alias(challenger.name, CHAMPION)
            champion_metrics, champion_signature = None, None
            if current is not None:
                champion = reg.load(f"{challenger.name}:{current}")  # verifies every file
                champion_signature = champion.signature
                if set(champion.feature_names) <= set(frame.columns):
                    champion_metrics = _metrics(y, on_eval_rows(champion.predict(frame)))
            decision = decide_promotion(
                challenger_version=challenger.version,
                challenger_metrics=challenger_metrics,
                challenger_signature=challenger.signature,
                champion_version=current,
                champion_metrics=champion_metrics,
                champion_signature=champion_signature,
                min_r2=min_r2,
                min_improvement=min_improvement,
            )
            if not decision.promote:
                return PromotionResult(
                    decision=decision,
                    promoted=False,
                    champion_before=before,
                    champion_after=current,
                    evaluated_on=evaluated_on,
                )
            try:
                reg.set_alias(
                    challenger.name,
                    CHAMPION,
                    challenger.version,
                    expected=current,
                    actor=actor,
                    reason=decision.reason,
                    metrics={"challenger": challenger_metrics, "champion": champion_metrics},
                )
            except AliasConflict:
                continue  # someone else promoted meanwhile: decide again against them
            return PromotionResult(
                decision=decision,
                promoted=True,
                champion_before=before,
                champion_after=challenger.version,
                evaluated_on=evaluated_on,
            )
        raise AliasConflict(
            challenger.name, CHAMPION, current, reg.get_alias(challenger.name, CHAMPION)
        )


# Registration is not idempotent (each call allocates a version): no retries.
register_task = pipeline_task(register_model, name="register")
promote_task = pipeline_task(champion_challenger, name="champion-challenger")
