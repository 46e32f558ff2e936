"""Test hook: die at a named point of publishing or registering, as a power cut would.

Crash-safety tests start a real training process with REGFLOW_TEST_KILL_AT=<point> and check
that the registry is consistent afterwards. Unset (always, outside those tests) it does
nothing. SIGKILL, not an exception: no `except`/`finally` gets to clean up.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "REGFLOW_TEST_KILL_AT"
KILL_POINTS = (
    "publish:staged",  # run folder fully written in its staging folder, nothing registered
    "register:staged",  # files copied into the registry's staging area, no transaction yet
    "register:published",  # version folder renamed into place, index row not committed
    "register:committed",  # version and its promotion committed, run folder still staged
    "publish:before-rename",  # the same, just before the run folder is renamed into place
)


def kill_point(name: str) -> None:
    """SIGKILL this process when REGFLOW_TEST_KILL_AT names `name`."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


KILL_ONCE_ENV = "REGFLOW_TEST_KILL_ONCE"  # a point, e.g. dask:evaluate:7 (pass and partition)
KILL_MARKER_ENV = "REGFLOW_TEST_KILL_MARKER"  # a file created by the one kill


def kill_once(name: str) -> None:
    """SIGKILL this process the first time any process reaches `name` (a Dask worker: the
    scheduler then runs the partition again elsewhere, where the marker stops a second kill)."""
    marker = os.environ.get(KILL_MARKER_ENV)
    if os.environ.get(KILL_ONCE_ENV) != name or not marker:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
