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
