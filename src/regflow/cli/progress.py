"""The terminal's progress display for a local run: one rich line per step, on stderr.

Shown only where a person watches: stderr is a terminal, and neither --json, --quiet nor
NO_COLOR asks for plain output. The flow reports through regflow.runtime.progress; this is
the sink the CLI installs for the length of the run.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from regflow.runtime.progress import installed

STARTING = "starting"

# The --quiet flag of train and predict (their other options come from a parameter model).
QUIET_OPTION = inspect.Parameter(
    "quiet",
    inspect.Parameter.KEYWORD_ONLY,
    annotation=Annotated[
        bool, typer.Option("--quiet", help="No progress display on the terminal (stderr).")
    ],
    default=False,
)


def wanted(as_json: bool, quiet: bool) -> bool:
    """Whether to show progress: only to a person at a terminal who did not opt out."""
    if as_json or quiet or os.environ.get("NO_COLOR"):
        return False
    return sys.stderr.isatty()


class TerminalProgress:
    """A ProgressSink drawing rich progress bars; safe to call from the hashing thread."""

    def __init__(self) -> None:
        self.display = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            redirect_stdout=False,  # stdout is the command's answer: never into the display
        )
        # Until the flow's first step: the temporary Prefect server can take seconds to start.
        self.steps: dict[str, TaskID] = {
            STARTING: self.display.add_task("start Prefect and the flow run", total=None, detail="")
        }

    def start(self, step: str, description: str, total: float | None) -> None:
        if not self.display.tasks[self.steps[STARTING]].finished:
            self.finish(STARTING, "")
        task = self.steps.get(step)
        if task is None:  # a retried step starts over on its own line
            self.steps[step] = self.display.add_task(description, total=total, detail="")
        else:
            self.display.reset(task, total=total, description=description, detail="")

    def update(self, step: str, completed: float, detail: str) -> None:
        if step in self.steps:
            self.display.update(self.steps[step], completed=completed, detail=detail)

    def finish(self, step: str, detail: str) -> None:
        task = self.steps.get(step)
        if task is None:
            return
        total = self.display.tasks[task].total or 1.0  # a spinner's step becomes a full bar
        fields: dict[str, Any] = {"detail": detail} if detail else {}
        self.display.update(task, total=total, completed=total, **fields)
        self.display.stop_task(task)


@contextmanager
def terminal_progress(enabled: bool) -> Iterator[None]:
    """Show the run's progress on stderr for the block, when `enabled`."""
    if not enabled:
        yield
        return
    sink = TerminalProgress()
    # Prefect's log lines print through the display's console, above the bars, instead of
    # between two redraws (which would leave copies of the bars behind).
    handlers = [
        h
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        if isinstance(logger, logging.Logger)
        for h in logger.handlers
        if isinstance(getattr(h, "console", None), Console)
    ]
    consoles = [h.console for h in handlers]  # type: ignore[attr-defined]
    for handler in handlers:
        handler.console = sink.display.console  # type: ignore[attr-defined]
    try:
        with sink.display, installed(sink):
            yield
    finally:
        for handler, console in zip(handlers, consoles, strict=True):
            handler.console = console  # type: ignore[attr-defined]
