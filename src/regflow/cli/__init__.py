"""The `regflow` command line: train, predict, models, serve."""

from __future__ import annotations

import sys

import typer

from regflow.cli.models import models_app
from regflow.cli.monitor import monitor_command
from regflow.cli.predict import predict_command
from regflow.cli.train import train_command
from regflow.deployments.serve import serve_command
from regflow.errors import InvalidInputError

app = typer.Typer(
    name="regflow",
    help="Train linear-regression models as Prefect flows and keep them in a model registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("train")(train_command)
app.command("predict")(predict_command)
app.command("serve")(serve_command)
models_app.command("monitor")(monitor_command)
app.add_typer(models_app, name="models")


def main() -> None:
    try:
        app()
    except InvalidInputError as err:  # pragma: no cover - raised before a flow exists
        typer.echo(f"regflow: {err}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
