"""`regflow predict`: batch scoring with a registry model; options come from ScoreParams."""

from __future__ import annotations

from typing import Any

import typer

from regflow.cli.models import emit
from regflow.cli.output import (
    JSON_OPTION,
    expected_failures,
    fail,
    run_flow,
)
from regflow.cli.params import parse_model, with_model_options
from regflow.cli.preflight import check_predict, requested_ref
from regflow.cli.progress import QUIET_OPTION, terminal_progress, wanted
from regflow.cli.server import flow_server
from regflow.errors import RegflowError
from regflow.runtime.local_server import wait_until_healthy
from regflow.runtime.startup import heavy_imports, quiet_prefect_defaults
from regflow.schemas.params import ScoreParams
from regflow.schemas.scoring import ScoreResult


@with_model_options(ScoreParams, [JSON_OPTION, QUIET_OPTION])
def predict_command(as_json: bool = False, quiet: bool = False, **options: Any) -> None:
    """Score DATA with a registry model; exit 0 done (also when monitoring finds the model
    degraded: the status says so), 2 invalid input or unknown model, 1 failed."""
    quiet_prefect_defaults()
    with expected_failures(as_json):
        params = parse_model(ScoreParams, options)
        ref = requested_ref(params)
    # A missing registry, model or data file is known before Prefect and torch load.
    with expected_failures(as_json, {"flow_run_id": None}):
        check_predict(params, ref)
    # Before Prefect loads: it reads PREFECT_API_URL once; a new server starts meanwhile.
    server = flow_server(as_json)
    with heavy_imports():
        from regflow.flows.scoring import score
        from regflow.registry.location import check_output_path
        from regflow.tasks.score import output_format, resolve_request

    with expected_failures(as_json):
        request = resolve_request(params.data, params.model)  # fail fast, before any server
        if params.out is not None:
            output_format(params.out)
            # Writing into the store or over DATA would destroy what the run depends on.
            check_output_path(params.out, params.registry, data=params.data)
        if server is not None:
            wait_until_healthy(server)
    with terminal_progress(wanted(as_json, quiet)):
        state = run_flow(
            score,
            as_json,
            data=params.data,
            model=request,
            out=params.out,
            registry=params.registry,
            registry_store=params.registry_store,
            max_mse_ratio=params.max_mse_ratio,
            max_psi=params.max_psi,
            data_name=params.data_name,
            return_state=True,
        )
    run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    result = state.result(raise_on_failure=False)
    if not isinstance(result, ScoreResult):
        error = (
            result
            if isinstance(result, RegflowError)
            else RegflowError(f"the scoring run failed: {state.message}")
        )
        fail(error, as_json, {"flow_run_id": run_id})
    payload = {"flow_run_id": run_id, **result.model_dump(mode="json")}
    emit(payload, as_json, lambda: print_scored(result))


def print_scored(result: ScoreResult) -> None:
    typer.echo(
        f"scored {result.rows} rows with {result.model.ref} "
        f"(requested {result.model.requested}) -> {result.out}"
    )
    verdict = result.monitoring
    if verdict is None:
        return
    live = verdict.live
    mse = f"live MSE {live.mse:.6g} " if live is not None and live.mse is not None else ""
    typer.echo(
        f"  monitoring: {verdict.status.upper()} on {verdict.rows_labelled} labelled rows; "
        f"{mse}({verdict.reference_split} MSE {verdict.reference_mse:.6g})"
    )
    for check in verdict.checks:
        value = "not finite" if check.value is None else f"{check.value:.4g}"
        mark = "FAILED" if check.failed else "ok"
        typer.echo(f"    {check.name}: {value} (threshold {check.threshold:g}) {mark}")
    for note in verdict.notes:
        typer.echo(f"    note: {note}")
    if not result.monitoring_recorded:
        typer.echo("    note: not recorded in the registry (see the run's warnings)")
