"""`regflow train`: its options come from TrainParams (one per field), then the flow runs."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from regflow.cli.output import (
    JSON_OPTION,
    emit_json,
    expected_failures,
    fail,
    run_flow,
)
from regflow.cli.params import parse_model, with_model_options
from regflow.cli.preflight import check_train
from regflow.cli.progress import QUIET_OPTION, terminal_progress, wanted
from regflow.cli.server import flow_server
from regflow.errors import GateStoppedError, RegflowError
from regflow.io.text import printable
from regflow.runtime import early_cluster
from regflow.runtime.cores import usable_cores
from regflow.runtime.local_server import wait_until_healthy
from regflow.runtime.startup import heavy_imports, quiet_prefect_defaults
from regflow.schemas.params import TrainParams

IGNORED_SHOWN = 10  # wide data may ignore thousands of columns
NOTHING_LEFT = "nothing was published or registered: no run folder, no new version"


@with_model_options(TrainParams, [JSON_OPTION, QUIET_OPTION])
def train_command(as_json: bool = False, quiet: bool = False, **options: Any) -> None:
    """Train a model on DATA and publish it; exit 0 done (or unchanged: an existing version has
    the same data and settings), 2 invalid input, 3 gated, 1 failed."""
    quiet_prefect_defaults()
    with expected_failures(as_json):
        params = parse_model(TrainParams, options)
    # The input errors a file's name and header decide, before Prefect and torch load; the
    # JSON keeps the keys a failed flow run gives (there is no run yet).
    before_run = {"flow_run_id": None, "published": False, "registered": False}
    with expected_failures(as_json, before_run, NOTHING_LEFT):
        check_train(params.data)
    if _starts_local_cluster(params):  # it starts (and hashes the data) while the pipeline loads
        early_cluster.start(usable_cores(), params.data.path)
    try:
        _train(params, server=flow_server(as_json), as_json=as_json, quiet=quiet)
    finally:
        early_cluster.discard()


def _train(params: TrainParams, *, server: Any, as_json: bool, quiet: bool) -> None:
    # flow_server runs before Prefect loads: it reads PREFECT_API_URL once.
    with heavy_imports():
        from regflow.flows.training import train as train_flow
        from regflow.registry.location import check_output_path
        from regflow.tasks.train import select_device

        # torch.optim's first optimizer imports torch._dynamo (with sympy): about 1.2 s of
        # CPU that a run pays anyway (both engines train in this process), paid here, where a
        # first run waits for the server's start-up, a dask run for its cluster's (and with
        # the collector paused). regflow never uses it directly.
        importlib.import_module("torch._dynamo")

    with expected_failures(as_json):
        select_device(params.training.device)  # fail fast, before the flow run starts
        # Run folders must not land inside the registry (corrupting it) or over a file.
        check_output_path(params.registry.out, params.registry.registry, folder=True)
        if server is not None:
            wait_until_healthy(server)
    with terminal_progress(wanted(as_json, quiet)):
        state = run_flow(
            train_flow,
            as_json,
            data=params.data,
            model=params.model,
            training=params.training,
            gate=params.gate,
            registry=params.registry,
            return_state=True,
        )
    run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    value = state.result(raise_on_failure=False)
    if state.is_completed():
        unchanged = getattr(value, "status", None) == "unchanged"
        if as_json:
            emit_json(unchanged_json(value) if unchanged else outcome_json(value))
        elif unchanged:
            typer.echo(f"model '{value.model}' unchanged: {value.reason}")
            typer.echo(f"  registry: {value.model_ref} in {value.registry}")
        else:
            print_summary(value)
        return
    # Every RegflowError ends a training run before its registry commit (flows/training.py).
    extra: dict[str, Any] = {"flow_run_id": run_id, "published": False, "registered": False}
    if isinstance(value, GateStoppedError):
        fail(value, as_json, {**extra, "gate": gate_json(value.report)}, NOTHING_LEFT)
    if isinstance(value, RegflowError):
        fail(value, as_json, extra, NOTHING_LEFT)
    fail(RegflowError(f"the run failed: {state.message}"), as_json, {"flow_run_id": run_id})


def _starts_local_cluster(params: TrainParams) -> bool:
    """Whether the flow will ask for a LocalCluster: the dask engine (as the flow will choose
    it) and no scheduler address given. (One named by the Prefect Variable is only known
    once Prefect loads: the early cluster is then closed unused.)"""
    from regflow.io.datasets import is_multi_file
    from regflow.runtime.engine import choose_engine, table_bytes

    if params.training.dask_address:
        return False
    path = params.data.path
    engine = choose_engine(
        params.training.engine, multi_file=is_multi_file(path), table_bytes=table_bytes(path)
    )
    return engine == "dask"


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


def _run_and_model(outcome: Any) -> dict[str, Any]:
    """The first keys of every outcome's JSON: status, run, model and registry."""
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
    }


def unchanged_json(outcome: Any) -> dict[str, Any]:
    """A run that registered nothing: the version it would have duplicated."""
    head = _run_and_model(outcome)
    head["model"]["aliases"] = outcome.aliases
    return {
        **head,
        "registered": False,
        "promoted": False,
        "reason": outcome.reason,
        "data_sha256": outcome.data_sha256,
        "fingerprint": outcome.fingerprint,
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
        **_run_and_model(outcome),
        "promoted": outcome.promoted,
        "champion_before": outcome.champion_before,
        "champion_after": outcome.champion_after,
        "promotion": outcome.promotion,
        "device": tr.device,
        "device_name": tr.device_name,
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


def ignored_text(outcome: Any) -> str:
    """The unused columns; a text one with the option that would use it."""
    text = set(outcome.text_columns)
    shown = [
        f"{n} (text; use --categorical {n})" if c in text else n
        for c in outcome.ignored_columns[:IGNORED_SHOWN]
        for n in [printable(c)]
    ]
    rest = len(outcome.ignored_columns) - len(shown)
    return ", ".join(shown) + (f", ... and {rest} more" if rest > 0 else "")


def print_summary(outcome: Any) -> None:
    ev, tr = outcome.evaluation, outcome.training
    coef = ", ".join(f"{k} = {v:.6g}" for k, v in list(tr.coefficients.items())[:10])
    lines = [
        f"model '{outcome.model}' trained on {tr.device} ({tr.device_name}; {tr.optimizer}, "
        f"{tr.dtype}, {tr.epochs_run} epochs: {tr.stop_reason})",
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
        *([f"  ignored: {ignored_text(outcome)}"] if outcome.ignored_columns else []),
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
