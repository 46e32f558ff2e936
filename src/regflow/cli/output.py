"""What every command prints: one JSON writer, one NaN policy, one way to fail.

JSON has no NaN or Infinity, so a value that is not finite prints as null everywhere (train,
predict and every `models` command alike). An expected failure is one `regflow: ...` line on
stderr, the error's exit code, and with --json a last stdout line with the error's fields.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer

from regflow.errors import RegflowError

# The --json flag of commands whose other options come from a parameter model.
JSON_OPTION = inspect.Parameter(
    "as_json",
    inspect.Parameter.KEYWORD_ONLY,
    annotation=Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")
    ],
    default=False,
)


def finite(value: Any) -> Any:
    """`value` with every float that is not finite replaced by None, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def emit_json(payload: dict[str, Any]) -> None:
    """The last line on stdout: one JSON object."""
    sys.stdout.write(json.dumps(finite(payload), default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def fail(
    err: RegflowError, as_json: bool, extra: dict[str, Any] | None = None, note: str | None = None
) -> NoReturn:
    """One line on stderr (InvalidInputError adds its problem list below it), no traceback;
    `note`, indented below it, says what was not done."""
    typer.echo(f"regflow: {err}", err=True)
    if note is not None:
        typer.echo(f"  {note}", err=True)
    if as_json:
        emit_json({"status": err.status, **(extra or {}), **err.to_dict()})
    raise typer.Exit(err.exit_code)


@contextmanager
def expected_failures(
    as_json: bool, extra: dict[str, Any] | None = None, note: str | None = None
) -> Iterator[None]:
    """RegflowError and OS errors (unreadable folder, disk full) end as `fail` does."""
    try:
        yield
    except RegflowError as error:
        fail(error, as_json, extra, note)
    except OSError as error:
        message = f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")
        fail(RegflowError(message), as_json, extra, note)


def run_flow(flow: Any, as_json: bool, **parameters: Any) -> Any:
    """Run a flow locally; a crash outside it (no server, say) is one line, exit 1."""
    from regflow.cli.watchdog import server_watchdog

    try:
        with server_watchdog(as_json):
            return flow(**parameters)
    except Exception as err:
        if os.environ.get("REGFLOW_DEBUG"):
            raise
        fail(RegflowError(f"could not run the flow: {type(err).__name__}: {err}"), as_json)
