"""Process start-up for the commands that run flows."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def heavy_imports() -> Iterator[None]:
    """Import the pipeline's libraries with the cyclic GC paused, then freeze what they built.

    torch, prefect, pandas and the rest leave millions of long-lived objects behind. The
    collector would otherwise walk them again and again while they load (about 0.5 s) and
    once more when the interpreter exits (about 1 s). `gc.freeze` moves them to the permanent
    generation, which no later collection visits; objects made afterwards are collected as
    usual, and reference counting still frees anything that is dropped.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def quiet_prefect_defaults() -> None:
    """The Prefect settings regflow runs with unless the environment sets them; call it before
    Prefect is imported: its telemetry notice prints at import."""
    # No telemetry: Prefect prints a notice at its first import in a terminal and then sends
    # usage events unless DO_NOT_TRACK is set; machines here often have no internet anyway.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary server starts slowly on a busy 2-core machine; Prefect's default is short.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
