"""Expected failures end a task in a named Failed state (no traceback, no pointless retry)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.cache_policies import NONE
from prefect.states import Failed, State

from regflow.errors import RegflowError

P = ParamSpec("P")
R = TypeVar("R")


def expected_failures_as_state(fn: Callable[P, R]) -> Callable[P, R | State]:
    """Wrap a plain function so that a RegflowError becomes e.g. an `InvalidInput` state."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | State:
        try:
            return fn(*args, **kwargs)
        except RegflowError as err:
            return Failed(name=err.state_name, message=str(err), data=err)

    return wrapper


def retry_unless_expected(task: Any, task_run: Any, state: State) -> bool:
    """Retry faults (network, storage); bad input will not get better on retry."""
    value = state.result(raise_on_failure=False)
    return not isinstance(value, RegflowError) or value.retryable


class _NoEmptyTraceback(logging.Filter):
    """Prefect logs a task's returned Failed state with exc_info=True outside any `except`:
    the formatter would then print a bogus 'NoneType: None' traceback line under it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.exc_info, tuple) and record.exc_info[0] is None:
            record.exc_info = None
        return True


logging.getLogger("prefect.task_runs").addFilter(_NoEmptyTraceback())


class StepFailed(Exception):
    """Raised inside a flow to stop at a task that ended in an expected Failed state."""

    def __init__(self, error: RegflowError):
        super().__init__(str(error))
        self.error = error


def unwrap(state: State[R]) -> R:
    """The task's value, or StepFailed carrying the RegflowError that stopped it."""
    value = state.result(raise_on_failure=False)
    if state.is_failed():
        if isinstance(value, RegflowError):
            raise StepFailed(value)
        state.result()  # re-raise an unexpected failure as it was
    return cast(R, value)


def pipeline_task(
    fn: Callable[P, R], *, name: str, retries: int = 0, delays: list[float] | None = None
) -> Task[P, R]:
    """A regflow step: expected failures become named states; I/O steps retry faults.

    No caching or result persistence: steps pass DataFrames of millions of rows, which
    Prefect would otherwise hash for cache keys.
    """
    options: dict[str, Any] = {"name": name, "cache_policy": NONE, "persist_result": False}
    if retries:
        options.update(
            retries=retries,
            retry_delay_seconds=delays or [1, 4][:retries],
            retry_condition_fn=retry_unless_expected,
        )
    # Typed as returning R: an expected failure's Failed state is the task run's final state,
    # which `unwrap` (or Prefect, for a direct call) turns back into the error.
    return cast("Task[P, R]", task(expected_failures_as_state(fn), **options))
