"""Progress of a run's steps, for whoever shows it; by default nobody.

The flows and tasks report here (a step started, advanced, finished); the CLI installs a
terminal display for a local run, which executes the flow in its own process. Under a
Prefect worker, or from the Python API, nothing is installed and every call is a no-op.
Prefect's own progress artifact is separate and unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class ProgressSink(Protocol):
    def start(self, step: str, description: str, total: float | None) -> None: ...

    def update(self, step: str, completed: float, detail: str) -> None: ...

    def finish(self, step: str, detail: str) -> None: ...


class _Nobody:
    """The default: progress goes nowhere."""

    def start(self, step: str, description: str, total: float | None) -> None:
        pass

    def update(self, step: str, completed: float, detail: str) -> None:
        pass

    def finish(self, step: str, detail: str) -> None:
        pass


_sink: ProgressSink = _Nobody()


@contextmanager
def installed(sink: ProgressSink) -> Iterator[None]:
    """Send this process's progress to `sink` until the block ends."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = previous


def start(step: str, description: str, total: float | None = None) -> None:
    """A step begins; `total` (bytes, epochs) gives it a bar, None a spinner."""
    _sink.start(step, description, total)


def update(step: str, completed: float, detail: str = "") -> None:
    _sink.update(step, completed, detail)


def finish(step: str, detail: str = "") -> None:
    _sink.finish(step, detail)


@contextmanager
def step(name: str, description: str, total: float | None = None) -> Iterator[None]:
    """A step from start to finish; a failed one is left where it stopped."""
    start(name, description, total)
    yield
    finish(name)
