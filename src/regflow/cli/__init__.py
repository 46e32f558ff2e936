"""The `regflow` command line: train, predict, models, serve, server.

The app itself lives in regflow.cli.commands. This package's import stays light (standard library
only), so that `main` can start the local Prefect server before the commands' imports (about
1 s of pandas and pydantic, then torch and Prefect) rather than after them.
"""

from __future__ import annotations

import sys
from typing import Any

from regflow.errors import InvalidInputError
from regflow.runtime.local_server import start_for_command, stop_unused_early_server
from regflow.runtime.startup import quiet_prefect_defaults

__all__ = ["app", "main", "package_version"]


def __getattr__(name: str) -> Any:
    """`from regflow.cli import app` (and package_version) load the app on first use."""
    if name in {"app", "package_version"}:
        from regflow.cli import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    # Before any command imports Prefect, which prints its telemetry notice at import.
    quiet_prefect_defaults()
    # train and predict: the server's start-up (about 4 s of CPU) runs beside all the imports.
    start_for_command(sys.argv[1:])
    try:
        from regflow.cli.commands import app

        # One program name however it is started (`python -m regflow` too), so that shell
        # completion's variable is always _REGFLOW_COMPLETE.
        app(prog_name="regflow")
    except InvalidInputError as err:  # pragma: no cover - raised before a flow exists
        print(f"regflow: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    finally:
        # A command that ended before its flow (a usage error, a typo in a path) leaves no
        # server behind that it started itself.
        stop_unused_early_server()


if __name__ == "__main__":
    main()
