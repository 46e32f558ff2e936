"""`regflow server start|stop|status`, and the server the flow-running commands use.

train and predict call `flow_server` before their heavy imports: with no PREFECT_API_URL and no
REGFLOW_NO_SERVER, they use the local server `regflow server start` started, or start it
themselves (at process start, so that it loads while they import) and leave it running for
the next command.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from regflow.cli.models import JsonOption
from regflow.cli.output import emit_json, expected_failures
from regflow.runtime.local_server import (
    DEFAULT_PORT,
    ServerState,
    prefect_home,
    read_state,
    server_answers,
    server_wanted,
    spawn_server,
    stop_server,
    take_early_start,
    wait_until_healthy,
)

server_app = typer.Typer(
    help="A local Prefect server that train and predict reuse (runs stay visible in its UI).",
    no_args_is_help=True,
)


def _state_json(state: ServerState | None, **extra: object) -> dict[str, object]:
    if state is None:
        return {"running": False, "prefect_home": str(prefect_home()), **extra}
    return {
        "running": True,
        "url": state.ui_url,
        "api_url": state.api_url,
        "pid": state.pid,
        "log": state.log,
        "prefect_home": state.prefect_home,
        **extra,
    }


@server_app.command("start")
def start_command(
    port: Annotated[
        int, typer.Option("--port", min=0, help="Port to use when free (0: any free port).")
    ] = DEFAULT_PORT,
    as_json: JsonOption = False,
) -> None:
    """Start the local Prefect server in the background, or reuse the running one."""
    with expected_failures(as_json):
        state, new = spawn_server(port=port)
        wait_until_healthy(state)
    if as_json:
        emit_json({"status": "ok", **_state_json(state, started=new)})
        return
    typer.echo(f"{'started' if new else 'already running:'} Prefect server at {state.ui_url}")
    typer.echo(f"  API {state.api_url}; log {state.log}; `regflow server stop` stops it")
    if os.environ.get("PREFECT_API_URL"):
        typer.echo("  note: PREFECT_API_URL is set here, so commands in this shell use that one")


@server_app.command("stop")
def stop_command(as_json: JsonOption = False) -> None:
    """Stop the local Prefect server that regflow started (its run history stays on disk)."""
    with expected_failures(as_json):
        state = stop_server()
    if as_json:
        emit_json(
            {"status": "ok", "stopped": state is not None, "prefect_home": str(prefect_home())}
        )
    elif state is None:
        typer.echo("no local Prefect server was running")
    else:
        typer.echo(f"stopped the Prefect server at {state.ui_url} (pid {state.pid})")


@server_app.command("status")
def status_command(as_json: JsonOption = False) -> None:
    """Say whether the local Prefect server runs, and where."""
    state = read_state()
    healthy = state is not None and server_answers(state.api_url)
    if as_json:
        emit_json({"status": "ok", **_state_json(state, healthy=healthy)})
    elif state is None:
        typer.echo(f"not running (Prefect home {prefect_home()})")
    else:
        answer = "answering" if healthy else "not answering yet"
        typer.echo(f"running at {state.ui_url} ({answer}; pid {state.pid}; log {state.log})")


def flow_server(as_json: bool) -> ServerState | None:
    """The local server this command's flow will use, started if need be (not yet waited for);
    None when the user named a server or opted out. Sets PREFECT_API_URL for this process, so
    call it before Prefect is imported."""
    if not server_wanted():
        return None
    # `regflow.cli.main` usually spawned it already, at process start (start_for_command).
    early = take_early_start()
    with expected_failures(as_json):
        state, new = early if early is not None else spawn_server()
    if new:
        typer.echo(
            f"regflow: started a local Prefect server at {state.ui_url} for this and later "
            "runs (`regflow server stop` stops it; REGFLOW_NO_SERVER=1 runs without it)",
            err=True,
        )
    os.environ["PREFECT_API_URL"] = state.api_url
    return state
