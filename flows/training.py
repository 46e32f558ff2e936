"""The `train` flow: ingest, validate, gate, train, evaluate, publish. Orchestration only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger, runtime
from prefect.client.orchestration import get_client
from prefect.states import Failed, State
from pydantic import Field

from regflow.errors import GateStoppedError, RegflowError, UsageError
from regflow.schemas.results import QuarantineSummary, TrainOutcome
from regflow.tasks.evaluate import evaluate_task, make_split
from regflow.tasks.events import emit_gate_stopped, emit_model_promoted, emit_model_registered
from regflow.tasks.gate import gate_task
from regflow.tasks.ingest import ingest_task
from regflow.tasks.outcomes import StepFailed, unwrap
from regflow.tasks.publish import build_card, publish_task, render_plots
from regflow.tasks.register import (
    promote_task,
    promotion_markdown,
    register_task,
    registry_location,
)
from regflow.tasks.report import gate_stop_report_task, report_task
from regflow.tasks.train import choose_dtype, resolve_config, select_device, train_task
from regflow.tasks.validate import ValidatedData, validate_task

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DEFAULT_OUT = "artifacts/runs"
PREVIEW_ROWS = 10  # rows of true against predicted in the outcome (and --json)


def default_model_name(data: str) -> str:
    """The data file's name without its extension (URLs too)."""
    stem = Path(data.split("?", 1)[0].rstrip("/")).stem or "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "model"


def _run_name() -> str:
    params = runtime.flow_run.parameters
    model = params.get("model") or default_model_name(str(params.get("data", "model")))
    return f"train-{model}-{datetime.now(UTC):%Y-%m-%d}"


def _tag_run(model: str, preset: str) -> None:
    # Tags set here reach deployment runs as well as local ones.
    run_id = runtime.flow_run.id
    if not run_id:
        return
    tags = sorted({*runtime.flow_run.tags, f"model:{model}", f"preset:{preset}", "regflow"})
    with get_client(sync_client=True) as client:
        client.update_flow_run(run_id, tags=tags)


@flow(name="train", flow_run_name=_run_name, validate_parameters=True)
def train(
    data: str,
    target: str,
    features: list[str] | None = None,
    model: str | None = None,
    preset: Literal["default", "seed"] = "default",
    optimizer: Literal["sgd", "adam", "lbfgs"] | None = None,
    lr: Annotated[float, Field(gt=0)] | None = None,
    epochs: Annotated[int, Field(ge=1)] | None = None,
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto",
    dtype: Literal["auto", "float32", "float64"] = "auto",
    seed: int = 0,
    holdout: Annotated[float, Field(ge=0, lt=1)] = 0.2,
    no_intercept: bool = False,
    min_abs_r: Annotated[float, Field(ge=0, le=1)] = 0.5,
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.05,
    out: str = DEFAULT_OUT,
    registry: str | None = None,
    min_r2: float = 0.0,
    min_improvement: Annotated[float, Field(ge=0, lt=1)] = 0.0,
    on_invalid: Literal["fail", "quarantine"] = "fail",
    max_invalid_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0,
) -> TrainOutcome | State:
    """Train a linear regression on DATA's TARGET and publish the model, card and plots."""
    name = model or default_model_name(data)
    parameters = {k: v for k, v in locals().items() if k != "name"}
    logger = get_run_logger()
    try:
        if not MODEL_NAME.match(name):
            raise UsageError(
                f"model name '{name}' must be letters, digits, '.', '_' or '-' (at most 100)",
                check="model_name",
            )
        torch_device = select_device(device)
        _tag_run(name, preset)
        loaded = unwrap(ingest_task(data, return_state=True))
        valid = unwrap(
            validate_task(
                loaded, target, features, on_invalid, max_invalid_fraction, return_state=True
            )
        )
        quarantine = quarantine_summary(valid, max_invalid_fraction)
        if quarantine is not None and quarantine.rows_rejected:
            logger.warning(
                "quarantined %d of %d rows (%s); training on the other %d",
                quarantine.rows_rejected,
                quarantine.rows_read,
                ", ".join(f"{check}: {n}" for check, n in quarantine.by_check.items()),
                quarantine.rows_used,
            )
        logger.info(
            "%s: %d rows, features %s, target '%s'",
            data,
            len(valid.frame),
            ", ".join(valid.features[:10]) + (" ..." if len(valid.features) > 10 else ""),
            target,
        )
        gate = gate_task(
            valid.frame,
            valid.features,
            target,
            min_abs_r=min_abs_r,
            alpha=alpha,
            fit_intercept=not no_intercept,
        )
        for warning in gate.warnings:
            logger.warning("gate warning (%s): %s", warning.kind, warning.message)
        if not gate.passed:
            gate_stop_report_task(name, gate)
            emit_gate_stopped(name, gate)
            raise StepFailed(GateStoppedError(gate, gate.reason))
        precision, why = choose_dtype(
            dtype,
            condition_number=gate.condition_number,
            r_squared=gate.multiple_r**2,
            device=torch_device,
        )
        logger.info("precision: %s", why)
        config = resolve_config(
            preset,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            fit_intercept=not no_intercept,
            seed=seed,
            dtype=precision,
        )
        plan = make_split(len(valid.frame), holdout, seed)
        trained = unwrap(
            train_task(
                valid.frame,
                valid.features,
                target,
                config,
                device,
                plan.train_rows,
                name,
                return_state=True,
            )
        )
        evaluation, predictions = evaluate_task(valid.frame, valid.features, target, trained, plan)
        run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
        card = build_card(
            name=name,
            data=valid,
            gate=gate,
            trained=trained,
            evaluation=evaluation,
            parameters=parameters,
            flow_run_id=run_id,
            flow_run_name=runtime.flow_run.name,
        )
        images = render_plots(valid.frame, trained, target, predictions)
        published = publish_task(out, card, trained, predictions, images, valid.rejected)
        version = unwrap(
            register_task(registry, name, published.run_dir, run_id, return_state=True)
        )
        emit_model_registered(name, version.version, version.ref, run_id)
        promotion = unwrap(
            promote_task(
                registry,
                version,
                valid.frame,
                target,
                predictions["predicted"].to_numpy(),
                plan.holdout_rows,
                min_r2=min_r2,
                min_improvement=min_improvement,
                actor=run_id,
                return_state=True,
            )
        )
        if promotion.promoted:
            emit_model_promoted(
                name, version.version, promotion.champion_before, promotion.decision.reason
            )
        logger.info(
            "registered %s; %s: %s",
            version.ref,
            "promoted to champion" if promotion.promoted else "not promoted",
            promotion.decision.reason,
        )
        report_task(
            name,
            gate,
            trained,
            evaluation,
            predictions,
            images,
            [
                promotion_markdown(promotion, version.ref),
                *([quarantine_markdown(quarantine)] if quarantine is not None else []),
            ],
        )
        logger.info(
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
            data_sha256=valid.sha256,
            features=valid.features,
            target=target,
            ignored_columns=valid.ignored_columns,
            dtype_reason=why,
            gate=gate,
            training=trained,
            evaluation=evaluation,
            paths=published,
            predictions_preview=predictions.head(PREVIEW_ROWS).to_dict("records"),
            registry=registry_location(registry),
            model_version=version.version,
            model_ref=version.ref,
            promoted=promotion.promoted,
            champion_before=promotion.champion_before,
            champion_after=promotion.champion_after,
            promotion=promotion.decision.model_dump(),
            quarantine=quarantine,
        )
    except StepFailed as stop:
        return _failed(stop.error)
    except RegflowError as err:
        return _failed(err)


def quarantine_summary(
    valid: ValidatedData, max_invalid_fraction: float
) -> QuarantineSummary | None:
    """Counts of the rows quarantine set aside; None when invalid rows fail the run."""
    if valid.rejected is None:
        return None
    # A row failing two checks counts under both (so by_check may sum past rows_rejected).
    per_check = valid.rejected.drop_duplicates(["row", "check"])
    return QuarantineSummary(
        rows_read=valid.rows_read,
        rows_rejected=valid.rows_rejected,
        rows_used=len(valid.frame),
        fraction=valid.rows_rejected / valid.rows_read if valid.rows_read else 0.0,
        max_invalid_fraction=max_invalid_fraction,
        by_check={str(k): int(v) for k, v in per_check["check"].value_counts().items()},
    )


def quarantine_markdown(summary: QuarantineSummary) -> str:
    lines = [
        "## Quarantined rows",
        f"{summary.rows_rejected} of {summary.rows_read} rows ({summary.fraction:.2%}) failed a "
        f"row check and were set aside (at most {summary.max_invalid_fraction:.2%} allowed); "
        f"the model was trained and evaluated on the other {summary.rows_used}. Each one is "
        "listed with the check it failed in `quarantine.csv` in the run folder.",
    ]
    if summary.by_check:
        lines += ["", "| check | rows |", "|---|---|"]
        lines += [f"| {check} | {n} |" for check, n in summary.by_check.items()]
    return "\n".join(lines)


def _failed(err: RegflowError) -> State:
    get_run_logger().error("%s", err)
    return Failed(name=err.state_name, message=str(err), data=err)
