"""The `regflow` Typer app and its commands: train, predict, models, serve, server.

`regflow.cli.main` runs it; `from regflow.cli import app` loads it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from regflow.cli.copy import copy_command
from regflow.cli.examples import add_examples
from regflow.cli.models import models_app
from regflow.cli.monitor import monitor_command
from regflow.cli.predict import predict_command
from regflow.cli.server import server_app
from regflow.cli.train import train_command
from regflow.deployments.serve import serve_command

app = typer.Typer(
    name="regflow",
    help="Train linear-regression models as Prefect flows and keep them in a model registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # --install-completion and --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
)
app.command("train")(train_command)
app.command("predict")(predict_command)
app.command("serve")(serve_command)
models_app.command("monitor")(monitor_command)
models_app.command("copy")(copy_command)
app.add_typer(models_app, name="models")
app.add_typer(server_app, name="server")
add_examples(app)


def package_version() -> str:
    """The installed distribution's version; the package's own when run from a bare tree."""
    try:
        return version("regflow")
    except PackageNotFoundError:  # pragma: no cover - not installed, e.g. PYTHONPATH=src
        from regflow import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"regflow {package_version()}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """The options before any command: --version and shell completion."""
