"""Batch scoring flow: a registry model (default `<name>@champion`) over a CSV/Parquet table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Failed, State
from pydantic import ValidationError

from regflow.errors import RegflowError
from regflow.io.markdown import md_text
from regflow.runtime import progress
from regflow.schemas.params import ScoreParams, field_label, parameter_error
from regflow.schemas.scoring import ScoredModel, ScoreResult
from regflow.stats.monitoring import DEFAULT_MAX_MSE_RATIO, DEFAULT_MAX_PSI, MonitoringReport
from regflow.tasks.events import emit_model_degraded
from regflow.tasks.ingest import ingest_task
from regflow.tasks.monitor import monitor_task, monitoring_report_task, record_monitoring_task
from regflow.tasks.outcomes import StepFailed, unwrap
from regflow.tasks.score import (
    PREDICTION_COLUMN,
    artifact_key,
    default_output,
    load_model_task,
    output_format,
    resolve_request,
    score_task,
    scores_table,
    write_scores_task,
)


def _run_name() -> str:
    params = flow_run.parameters or {}
    data = str(params.get("data", "data"))
    model = params.get("model") or Path(data).stem
    model = str(model).replace("@", "-").replace(":", "-v")
    return f"score-{model}-{datetime.now(UTC):%Y-%m-%d}"


# The UI form shows ScoreParams' descriptions; ScoreParams validates (validate_parameters=False).
FIELDS = ScoreParams.model_fields


@flow(name="score", flow_run_name=_run_name, log_prints=False, validate_parameters=False)
def score(
    data: Annotated[str, FIELDS["data"]],
    model: Annotated[str | None, FIELDS["model"]] = None,
    out: Annotated[str | None, FIELDS["out"]] = None,
    registry: Annotated[str | None, FIELDS["registry"]] = None,
    registry_store: Annotated[str | None, FIELDS["registry_store"]] = None,
    max_mse_ratio: Annotated[float, FIELDS["max_mse_ratio"]] = DEFAULT_MAX_MSE_RATIO,
    max_psi: Annotated[float, FIELDS["max_psi"]] = DEFAULT_MAX_PSI,
    data_name: Annotated[str | None, FIELDS["data_name"]] = None,
) -> ScoreResult | State:
    """Score `data` with the registry model `model` (default `<data name>@champion`).

    Writes the input's columns plus `predicted`, `model_version` and `model_ref` to `out`
    (CSV or Parquet by extension; default artifacts/scores/...) and publishes the first rows
    as the table artifact `<model>-scores`. When `data` holds the model's target column,
    the version is also judged (live metrics against its holdout, feature drift against its
    training data): the table artifact `<model>-monitoring`, a registry record, and on a
    failed check the event `regflow.model.degraded` and status `degraded`. Expected
    failures end the run in a named Failed state (InvalidInput, NotFound, IntegrityError)
    carrying the error.
    """
    logger = get_run_logger()
    try:
        try:
            ScoreParams(
                data=data,
                model=model,
                out=out,
                registry=registry,
                registry_store=registry_store,
                max_mse_ratio=max_mse_ratio,
                max_psi=max_psi,
                data_name=data_name,
            )
        except ValidationError as err:
            raise parameter_error(err, field_label) from None
        ref = resolve_request(data, model)
        if out is not None:
            output_format(out)  # refuse a bad extension before doing any work
        with progress.step("load", f"load {ref}"):
            predictor = unwrap(load_model_task(ref, registry, registry_store, return_state=True))
        logger.info(
            "model %s resolved to %s: features %s, target %r",
            ref,
            predictor.ref,
            predictor.feature_names,
            predictor.target,
        )
        loaded = unwrap(ingest_task(data, data_name, return_state=True))
        ignored = predictor.extra_columns(loaded.frame)
        if ignored:
            logger.info("columns not used by the model, passed through: %s", ignored)
        with progress.step("score", "score and write"):
            scored = unwrap(score_task(predictor, loaded.frame, loaded.source, return_state=True))
            target = Path(out) if out is not None else default_output(data, predictor)
            written = unwrap(write_scores_task(scored, target, return_state=True))
        with progress.step("monitor", "monitor"):
            verdict = unwrap(
                monitor_task(predictor, scored, max_mse_ratio, max_psi, return_state=True)
            )
    except StepFailed as failure:
        return Failed(name=failure.error.state_name, message=str(failure.error), data=failure.error)
    except RegflowError as err:
        return Failed(name=err.state_name, message=str(err), data=err)

    key = artifact_key(predictor.name)
    predictions = scored[PREDICTION_COLUMN]
    create_table_artifact(
        table=scores_table(scored),
        key=key,
        description=(
            f"{len(scored)} rows of {md_text(loaded.source)} scored with {md_text(predictor.ref)} "
            f"(requested {md_text(ref)}); written to {md_text(written)}. First rows shown."
        ),
    )
    logger.info("scored %d rows with %s into %s", len(scored), predictor.ref, written)
    recorded = verdict is not None and _raise_the_alarm(
        verdict, predictor.name, loaded.source, registry, loaded.sha256, registry_store
    )
    empty = len(predictions) == 0
    return ScoreResult(
        model=ScoredModel(
            name=predictor.name, version=predictor.version, ref=predictor.ref, requested=ref
        ),
        data=loaded.source,
        data_sha256=loaded.sha256,
        rows=len(scored),
        out=str(written),
        format=output_format(written),
        artifact_key=key,
        ignored_columns=ignored,
        prediction_mean=None if empty else float(predictions.mean()),
        prediction_min=None if empty else float(predictions.min()),
        prediction_max=None if empty else float(predictions.max()),
        status=verdict.status if verdict is not None else "ok",
        monitoring=verdict,
        monitoring_recorded=recorded,
    )


def _raise_the_alarm(
    verdict: MonitoringReport,
    model: str,
    data: str,
    registry: str | None,
    data_sha256: str,
    store: str | None,
) -> bool:
    """Publish and record the verdict; emit `regflow.model.degraded` when a check failed.
    Returns whether the registry holds the record. None of it can fail the scoring run."""
    logger = get_run_logger()
    run_id = str(flow_run.id) if flow_run.id else None
    recorded = bool(record_monitoring_task(registry, verdict, run_id, data_sha256, store))
    try:
        monitoring_report_task(model, verdict, data)
    except Exception as err:
        logger.warning("the monitoring artifact of %s failed: %s", verdict.model_ref, err)
    if verdict.status == "degraded":
        emit_model_degraded(verdict)
        logger.warning("%s is degraded: failed %r", verdict.model_ref, verdict.failed)
    else:
        logger.info(
            "%s passed monitoring on %d labelled rows", verdict.model_ref, verdict.rows_labelled
        )
    return recorded
