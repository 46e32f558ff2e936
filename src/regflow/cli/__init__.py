"""The `regflow` command line: each option maps one to one onto a flow parameter."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from regflow.cli.models import models_app, predict_command
from regflow.deployments.serve import serve_command
from regflow.errors import GateStoppedError, InvalidInputError, RegflowError
from regflow.runtime.startup import heavy_imports

app = typer.Typer(
    name="regflow",
    help="Train linear-regression models as Prefect flows and keep them in a model registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_app, name="models")
app.command("predict")(predict_command)
app.command("serve")(serve_command)


class Preset(StrEnum):
    default = "default"
    seed = "seed"


class OptimizerName(StrEnum):
    sgd = "sgd"
    adam = "adam"
    lbfgs = "lbfgs"


class DeviceName(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class OnInvalid(StrEnum):
    fail = "fail"
    quarantine = "quarantine"


class Precision(StrEnum):
    auto = "auto"
    float32 = "float32"
    float64 = "float64"


def _quiet_prefect_defaults() -> None:
    # This machine class has no internet: don't let the temporary server try telemetry.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary server starts slowly on a busy 2-core machine; Prefect's default is short.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def emit_json(payload: dict[str, Any]) -> None:
    """The last line on stdout: one JSON object."""
    sys.stdout.write(json.dumps(payload, default=str, allow_nan=True) + "\n")
    sys.stdout.flush()


def fail(err: RegflowError, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    typer.echo(f"regflow: {err}", err=True)
    if as_json:
        emit_json({"status": err.status, **(extra or {}), **err.to_dict()})
    raise typer.Exit(err.exit_code)


def gate_json(gate: Any) -> dict[str, Any]:
    return {
        "decision": gate.decision,
        "reason": gate.reason,
        "statistic": gate.statistic,
        "value": gate.value,
        "p_value": gate.p_value,
        "features": {
            f.feature: {"r": f.r, "p": f.p_value, "spearman": f.spearman} for f in gate.features
        },
        "R": gate.multiple_r,
        "R_p_value": gate.multiple_r_p_value,
        "condition_number": gate.condition_number,
        "min_abs_r": gate.min_abs_r,
        "alpha": gate.alpha,
        "warnings": [w.model_dump() for w in gate.warnings],
    }


def outcome_json(outcome: Any) -> dict[str, Any]:
    ev, tr = outcome.evaluation, outcome.training
    metrics: dict[str, Any] = {
        split: {"n": m.n, "mse": m.mse, "rmse": m.rmse, "mae": m.mae, "r2": m.r2}
        for split, m in ev.metrics.items()
    }
    metrics.update(
        fit_split=ev.fit_split,
        ols_mse=ev.ols_mse,
        optimality_gap=ev.optimality_gap,
        optimality_gap_abs=ev.optimality_gap_abs,
    )
    return {
        "status": outcome.status,
        "flow_run_id": outcome.flow_run_id,
        "flow_run_name": outcome.flow_run_name,
        "model": {
            "name": outcome.model,
            "version": outcome.model_version,
            "reference": outcome.model_ref,
        },
        "registry": outcome.registry,
        "promoted": outcome.promoted,
        "champion_before": outcome.champion_before,
        "champion_after": outcome.champion_after,
        "promotion": outcome.promotion,
        "device": tr.device,
        "dtype": tr.dtype,
        "optimizer": tr.optimizer,
        "epochs_run": tr.epochs_run,
        "stop_reason": tr.stop_reason,
        "metrics": metrics,
        "holdout": ev.holdout_note,
        "gate": gate_json(outcome.gate),
        "coefficients": {"weights": tr.coefficients, "intercept": tr.intercept},
        "reference": {
            "weights": ev.ols_coefficients,
            "intercept": ev.ols_intercept,
            "condition_number": ev.reference_condition_number,
            "trusted": ev.reference_trusted,
        },
        "features": outcome.features,
        "target": outcome.target,
        "ignored_columns": outcome.ignored_columns,
        "data_sha256": outcome.data_sha256,
        "paths": outcome.paths.model_dump(),
        "predictions": outcome.predictions_preview,
        "quarantine": outcome.quarantine.model_dump() if outcome.quarantine else None,
    }


def print_summary(outcome: Any) -> None:
    ev, tr = outcome.evaluation, outcome.training
    coef = ", ".join(f"{k} = {v:.6g}" for k, v in list(tr.coefficients.items())[:10])
    lines = [
        f"model '{outcome.model}' trained on {tr.device} ({tr.optimizer}, {tr.dtype}, "
        f"{tr.epochs_run} epochs: {tr.stop_reason})",
        f"  coefficients: {coef}{' ...' if len(tr.coefficients) > 10 else ''}; "
        f"intercept = {tr.intercept:.6g}",
        f"  {ev.holdout_note}",
        *(
            f"  {m.split:<8} n={m.n:<8} MSE {m.mse:.6g}  RMSE {m.rmse:.6g}  MAE {m.mae:.6g}  "
            f"R² {m.r2:.6g}"
            for m in ev.metrics.values()
        ),
        f"  least-squares optimum MSE {ev.ols_mse:.6g}; optimality gap "
        + (f"{ev.optimality_gap:.3g}" if ev.optimality_gap is not None else "n/a (exact fit)")
        + f", absolute {ev.optimality_gap_abs:.3g}",
        *(
            [
                f"  quarantined {q.rows_rejected} of {q.rows_read} rows ({q.fraction:.2%}): "
                f"{outcome.paths.quarantine}"
            ]
            if (q := outcome.quarantine) is not None
            else []
        ),
        f"  gate: {outcome.gate.reason}",
        *(f"  warning ({w.kind}): {w.message}" for w in outcome.gate.warnings),
        f"  registry: {outcome.model_ref} in {outcome.registry}; "
        + ("promoted to champion" if outcome.promoted else "not promoted")
        + f": {outcome.promotion['reason']}",
        f"  outputs: {outcome.paths.run_dir}",
        f"    model:       {outcome.paths.model}",
        f"    card:        {outcome.paths.card}",
        f"    predictions: {outcome.paths.predictions}",
        *(f"    plot:        {p}" for p in outcome.paths.plots.values()),
    ]
    typer.echo("\n".join(lines))


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be > 0, got {value}")
    return value


def _fraction(value: float) -> float:
    if not 0 <= value < 1:
        raise typer.BadParameter(f"must be in [0, 1), got {value}")
    return value


def _features(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()] or []


@app.command()
def train(
    data: Annotated[str, typer.Argument(help="CSV or Parquet file: a local path or a URL")],
    target: Annotated[str, typer.Option(help="the target column")],
    features: Annotated[
        str | None, typer.Option(help="comma-separated feature columns (default: numeric ones)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="model name (default: data file name)")] = None,
    preset: Annotated[
        Preset, typer.Option(help="default: fast to the optimum; seed: the tutorial")
    ] = Preset.default,
    optimizer: Annotated[
        OptimizerName | None, typer.Option(help="override the preset's optimizer")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(callback=_positive, help="learning rate (> 0)")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="maximum epochs")] = None,
    device: Annotated[
        DeviceName, typer.Option(help="auto picks cuda, then mps, then cpu")
    ] = DeviceName.auto,
    dtype: Annotated[
        Precision,
        typer.Option(help="training precision (auto: float32 unless it cannot reach the optimum)"),
    ] = Precision.auto,
    seed: Annotated[int, typer.Option(help="seed for initialisation and the holdout split")] = 0,
    holdout: Annotated[
        float,
        typer.Option(callback=_fraction, help="holdout fraction in [0, 1) (used from 30 rows)"),
    ] = 0.2,
    no_intercept: Annotated[
        bool, typer.Option("--no-intercept", help="fit through the origin")
    ] = False,
    min_abs_r: Annotated[
        float, typer.Option(min=0, max=1, help="gate: smallest |r| (or R) to train")
    ] = 0.5,
    alpha: Annotated[
        float, typer.Option(min=0, max=1, callback=_positive, help="gate: largest p-value to train")
    ] = 0.05,
    out: Annotated[str, typer.Option(help="folder for run folders")] = "artifacts/runs",
    registry: Annotated[
        str | None,
        typer.Option(help="registry folder or database URL (default $REGFLOW_REGISTRY)"),
    ] = None,
    min_r2: Annotated[
        float, typer.Option(help="promotion: R² floor when there is no champion")
    ] = 0.0,
    min_improvement: Annotated[
        float,
        typer.Option(
            callback=_fraction, help="promotion: relative MSE improvement needed, in [0, 1)"
        ),
    ] = 0.0,
    on_invalid: Annotated[
        OnInvalid,
        typer.Option(
            help="rows failing a value check: fail the run, or quarantine them "
            "(written to quarantine.csv) and train on the rest"
        ),
    ] = OnInvalid.fail,
    max_invalid_fraction: Annotated[
        float,
        typer.Option(min=0, max=1, help="quarantine: largest share of rows that may be set aside"),
    ] = 0.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON object as the last line")
    ] = False,
) -> None:
    """Train a model on DATA and publish it; exit 0 done, 2 invalid input, 3 gated, 1 failed."""
    _quiet_prefect_defaults()
    with heavy_imports():
        from regflow.flows.training import train as train_flow
        from regflow.tasks.train import select_device

    try:
        select_device(device.value)  # fail fast, before a Prefect server starts
    except RegflowError as err:
        fail(err, as_json)
    state = _run_flow(
        train_flow,
        as_json,
        data=data,
        target=target,
        features=_features(features),
        model=model,
        preset=preset.value,
        optimizer=optimizer.value if optimizer else None,
        lr=lr,
        epochs=epochs,
        device=device.value,
        dtype=dtype.value,
        seed=seed,
        holdout=holdout,
        no_intercept=no_intercept,
        min_abs_r=min_abs_r,
        alpha=alpha,
        out=out,
        registry=registry,
        min_r2=min_r2,
        min_improvement=min_improvement,
        on_invalid=on_invalid.value,
        max_invalid_fraction=max_invalid_fraction,
        return_state=True,
    )
    run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    value = state.result(raise_on_failure=False)
    if state.is_completed():
        if as_json:
            emit_json(outcome_json(value))
        else:
            print_summary(value)
        return
    if isinstance(value, GateStoppedError):
        fail(value, as_json, {"flow_run_id": run_id, "gate": gate_json(value.report)})
    if isinstance(value, RegflowError):
        fail(value, as_json, {"flow_run_id": run_id})
    fail(RegflowError(f"the run failed: {state.message}"), as_json, {"flow_run_id": run_id})


def _run_flow(flow: Any, as_json: bool, **parameters: Any) -> Any:
    """Run a flow locally; a crash outside it (no server, say) is one line, exit 1."""
    try:
        return flow(**parameters)
    except Exception as err:
        if os.environ.get("REGFLOW_DEBUG"):
            raise
        fail(RegflowError(f"could not run the flow: {type(err).__name__}: {err}"), as_json)


def main() -> None:
    try:
        app()
    except InvalidInputError as err:  # pragma: no cover - raised before a flow exists
        typer.echo(f"regflow: {err}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
