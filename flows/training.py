"""The `train` flow: ingest, validate, gate, train, evaluate, publish, register (orchestration)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.client.orchestration import get_client
from prefect.states import Failed, State
from pydantic import BaseModel, ValidationError

from regflow.errors import GateStoppedError, RegflowError
from regflow.flows.finish import finish_registered
from regflow.flows.partitioned import train_on_cluster
from regflow.io.datasets import is_multi_file
from regflow.registry import ModelVersion
from regflow.registry.location import check_output_path
from regflow.runtime import progress
from regflow.runtime.engine import choose_engine, table_bytes
from regflow.schemas.params import (
    DataParams,
    GateParams,
    ModelParams,
    RegistryParams,
    TrainingParams,
    TrainParams,
    default_model_name,
    field_label,
    parameter_error,
)
from regflow.schemas.results import TrainOutcome, UnchangedOutcome
from regflow.tasks.evaluate import evaluate_task, kept_positions, make_split, summary_rows
from regflow.tasks.events import emit_gate_stopped
from regflow.tasks.gate import gate_task
from regflow.tasks.ingest import ingest_task
from regflow.tasks.outcomes import StepFailed, unwrap
from regflow.tasks.publish import (
    build_card,
    discard_run,
    library_versions,
    publish_task,
    render_plots,
)
from regflow.tasks.register import register_task
from regflow.tasks.report import (
    gate_stop_report_task,
    log_data_summary,
    unchanged_report_task,
)
from regflow.tasks.train import (
    aims_at_optimum,
    choose_dtype,
    resolve_config,
    select_device,
    train_task,
)
from regflow.tasks.unchanged import run_fingerprint, unchanged_version
from regflow.tasks.validate import quarantine_summary, validate_task


def _field(value: Any, name: str) -> Any:
    # A section arrives as a model (local call), a dict (API) or, from older deployments, flat.
    if isinstance(value, BaseModel):
        return getattr(value, name, None)
    return value.get(name) if isinstance(value, dict) else value


def _run_name() -> str:
    params = runtime.flow_run.parameters
    name = _field(params.get("model"), "name")
    path = _field(params.get("data"), "path")
    return f"train-{name or default_model_name(str(path or 'model'))}-{datetime.now(UTC):%Y-%m-%d}"


def _tag_run(model: str, preset: str) -> None:
    # Tags set here reach deployment runs as well as local ones.
    run_id = runtime.flow_run.id
    if not run_id:
        return
    tags = sorted({*runtime.flow_run.tags, f"model:{model}", f"preset:{preset}", "regflow"})
    with get_client(sync_client=True) as client:
        client.update_flow_run(run_id, tags=tags)


def accept_parameters(sections: dict[str, Any], flat: dict[str, Any]) -> TrainParams:
    """Validate the flow's arguments (grouped, or flat from an older deployment) as one model."""
    try:
        params, notes = TrainParams.from_flow_arguments(sections, flat)
    except ValidationError as err:
        raise parameter_error(err, field_label) from None
    for note in notes:
        get_run_logger().warning("%s; flat parameters will be removed in a later release", note)
    return params


# Prefect validates nothing here (validate_parameters=False): accept_parameters does, so that
# flat parameters from deployments made before the grouping still reach the flow.
@flow(name="train", flow_run_name=_run_name, validate_parameters=False)
def train(
    data: DataParams,
    model: ModelParams = ModelParams(),  # noqa: B008 - frozen pydantic defaults
    training: TrainingParams = TrainingParams(),  # noqa: B008
    gate: GateParams = GateParams(),  # noqa: B008
    registry: RegistryParams = RegistryParams(),  # noqa: B008
    **flat_parameters: Any,
) -> TrainOutcome | UnchangedOutcome | State:
    """Train a linear regression on the data's target and publish the model, card and plots."""
    logger = get_run_logger()
    run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
    try:
        sections = {"data": data, "model": model, "training": training, "gate": gate}
        params = accept_parameters({**sections, "registry": registry}, flat_parameters)
        name, opts = params.model_name, params.training
        # Deployments reach here without the CLI's checks: never write into a registry.
        check_output_path(params.registry.out, params.registry.registry, folder=True)
        device = select_device(opts.device)
        _tag_run(name, params.model.preset)
        data_path = params.data.path
        engine = choose_engine(
            opts.engine, multi_file=is_multi_file(data_path), table_bytes=table_bytes(data_path)
        )
        if engine == "dask":
            logger.info("engine: dask")
            return train_on_cluster(params, name, run_id, _unchanged)
        loaded = unwrap(ingest_task(data_path, params.data.name, return_state=True))
        with progress.step("validate", "validate"):
            valid = unwrap(validate_task(loaded, **params.data.validation(), return_state=True))
        quarantine = quarantine_summary(valid, params.data.max_invalid_fraction)
        log_data_summary(valid, quarantine)
        fingerprint = run_fingerprint(
            valid.sha256, params.model_settings(valid.features), library_versions()["regflow"]
        )
        if not params.registry.force:
            same = unchanged_version(
                params.registry.registry,
                name,
                valid.sha256,
                fingerprint,
                params.registry.registry_store,
            )
            if same is not None:
                return _unchanged(name, *same, valid.sha256, fingerprint, run_id)
        with progress.step("gate", "correlation gate"):
            report = gate_task(valid.frame, valid.features, valid.target, **params.gate_options())
        if not report.passed:
            gate_stop_report_task(name, report)
            emit_gate_stopped(name, report)
            raise StepFailed(GateStoppedError(report, report.reason))
        precision, why = choose_dtype(
            opts.dtype,
            condition_number=report.condition_number,
            r_squared=report.multiple_r**2,
            device=device,
        )
        logger.info("precision: %s", why)
        config = resolve_config(params.model.preset, **params.training_options(precision))
        plan = make_split(len(valid.frame), opts.holdout, opts.seed, kept_positions(valid))
        trained = unwrap(
            train_task(
                valid.frame,
                valid.features,
                valid.target,
                config,
                opts.device,
                plan.train_rows,
                name,
                return_state=True,
            )
        )
        with progress.step("evaluate", "evaluate"):
            evaluation, predictions = unwrap(
                evaluate_task(
                    valid.frame, valid.features, valid.target, trained, plan,
                    opts.max_optimality_gap, aims_at_optimum(config), return_state=True,
                )
            )  # fmt: skip
        card = build_card(
            name=name,
            data=valid,
            gate=report,
            trained=trained,
            evaluation=evaluation,
            parameters=params.flat(),
            flow_run_id=run_id,
            flow_run_name=runtime.flow_run.name,
            fingerprint=fingerprint,
            summary_rows=summary_rows(valid, plan.train_rows),
        )
        images = render_plots(valid.frame, trained, valid.target, predictions)
        out = params.registry
        staged = publish_task(out.out, card, trained, predictions, images, valid.rejected)
        # The commit point: until the version registers, nothing is left behind. After it, no
        # RegflowError can end the run, so the CLI may say a failed run left nothing.
        try:
            registered = unwrap(
                register_task(
                    out.registry,
                    name,
                    staged.staging_dir,
                    staged.final_dir,
                    card.signature,
                    valid.frame,
                    valid.target,
                    predictions["predicted"].to_numpy(),
                    plan.holdout_rows,
                    min_r2=out.min_r2,
                    min_improvement=out.min_improvement,
                    actor=run_id,
                    link_files=True,
                    store=out.registry_store,
                    return_state=True,
                )
            )
        except BaseException:
            discard_run(staged)
            raise
        return finish_registered(
            registered, staged, run_id=run_id, data=valid, gate=report, trained=trained,
            evaluation=evaluation, predictions=predictions, images=images,
            quarantine=quarantine, dtype_reason=why,
        )  # fmt: skip
    except StepFailed as stop:
        return _failed(stop.error)
    except RegflowError as err:
        return _failed(err)


def _unchanged(
    name: str,
    same: ModelVersion,
    registry: str,
    data_sha256: str,
    fingerprint: str,
    run_id: str | None,
) -> UnchangedOutcome:
    held = f" (@{', @'.join(same.aliases)})" if same.aliases else ""
    reason = (
        f"{same.ref}{held} was trained on the same data (SHA-256 {data_sha256[:12]}...), "
        "settings and regflow version: nothing new to register (--force, or registry.force "
        "in a deployment, trains anyway)"
    )
    get_run_logger().info("unchanged: %s", reason)
    try:  # the run's answer stands even if its artifact cannot be written
        unchanged_report_task(name, same.ref, reason)
    except Exception as err:
        get_run_logger().warning("unchanged, but the report artifact failed: %s", err)
    return UnchangedOutcome(
        model=name,
        flow_run_id=run_id,
        flow_run_name=runtime.flow_run.name,
        data_sha256=data_sha256,
        fingerprint=fingerprint,
        registry=registry,
        model_version=same.version,
        model_ref=same.ref,
        aliases=same.aliases,
        reason=reason,
    )


def _failed(err: RegflowError) -> State:
    get_run_logger().error("%s", err)
    return Failed(name=err.state_name, message=str(err), data=err)
