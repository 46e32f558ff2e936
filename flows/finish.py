"""The end of a training run after its registry commit, the same for both engines.

From here no RegflowError ends the run: the run folder moves into place, the registry's
events go out, and a report artifact that fails is a warning, not a failed run.
"""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, runtime

from regflow.registry import ModelVersion
from regflow.schemas.frames import ValidatedData
from regflow.schemas.promotion import PromotionResult
from regflow.schemas.results import (
    Evaluation,
    GateReport,
    QuarantineSummary,
    StagedRun,
    TrainOutcome,
    TrainResult,
)
from regflow.tasks.events import emit_model_promoted, emit_model_registered
from regflow.tasks.publish import finalize_task
from regflow.tasks.report import report_task

PREVIEW_ROWS = 10  # rows of true against predicted in the outcome (and --json)


def finish_registered(
    registered: tuple[ModelVersion, PromotionResult, str],
    staged: StagedRun,
    *,
    run_id: str | None,
    data: ValidatedData,
    gate: GateReport,
    trained: TrainResult,
    evaluation: Evaluation,
    predictions: pd.DataFrame,
    images: dict[str, bytes],
    quarantine: QuarantineSummary | None,
    dtype_reason: str,
) -> TrainOutcome:
    """Finalize the run folder, emit the events, write the report, return the outcome.

    `predictions`: every row's (local engine) or the sample's (dask engine) true and
    predicted values, for the report and the outcome's preview.
    """
    version, promotion, location = registered
    name = version.name
    published = finalize_task(staged)
    emit_model_registered(name, version.version, version.ref, run_id)
    if promotion.promoted:
        emit_model_promoted(
            name, version.version, promotion.champion_before, promotion.decision.reason
        )
    try:
        report_task(
            name, gate, trained, evaluation, predictions, images, promotion, version.ref,
            quarantine,
        )  # fmt: skip
    except Exception as err:
        get_run_logger().warning(
            "registered %s, but its report artifacts failed: %s", version.ref, err
        )
    get_run_logger().info(
        "done: %s, %s MSE %.6g, R² %.6g; optimality gap %s; outputs in %s",
        name,
        evaluation.fit_split,
        evaluation.model_mse,
        evaluation.metrics[evaluation.fit_split].r2,
        evaluation.optimality_gap,
        published.run_dir,
    )
    return TrainOutcome(
        model=name,
        flow_run_id=run_id,
        flow_run_name=runtime.flow_run.name,
        data_sha256=data.sha256,
        features=data.features,
        target=data.target,
        ignored_columns=data.ignored_columns,
        text_columns=data.text_columns,
        categorical=data.levels,
        dtype_reason=dtype_reason,
        gate=gate,
        training=trained,
        evaluation=evaluation,
        paths=published,
        predictions_preview=predictions.head(PREVIEW_ROWS).to_dict("records"),
        registry=location,
        model_version=version.version,
        model_ref=version.ref,
        promoted=promotion.promoted,
        champion_before=promotion.champion_before,
        champion_after=promotion.champion_after,
        promotion=promotion.decision.model_dump(),
        quarantine=quarantine,
    )
