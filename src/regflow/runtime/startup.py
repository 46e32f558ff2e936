"""Process start-up for the commands that run flows."""

from __future__ import annotations

import gc
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
