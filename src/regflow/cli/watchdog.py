"""Stop a local flow run whose Prefect server has gone away, with one message.

When the server named by PREFECT_API_URL dies mid-run, Prefect's client retries every state
update, log batch and event with backoff: measured here, `regflow train` then hung for five
minutes and printed four tracebacks and some 200 lines before giving up. Prefect has no
setting that turns "the API is gone" into a prompt failure of a running flow, so this
watchdog polls the server's /health endpoint from a thread.

While the server does not answer, file descriptor 2 is pointed at /dev/null (Prefect's
retry warnings and tracebacks say nothing the one message below does not); if it answers
again within the grace period, stderr comes back. If it stays silent for the grace period,
the process ends at once with exit 1. Ending the process is safe by construction: a run is
transactional up to its registry commit (the SIGKILL tests in tests/faults prove it), so it
leaves a complete version or none, and at worst a hidden staging folder that the next run
sweeps.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from regflow.runtime.local_server import server_answers

GRACE_S = 10.0  # silence longer than this is a dead server, not a blip
POLL_S = 1.0


class _Watchdog(threading.Thread):
    def __init__(self, api_url: str, as_json: bool, grace_s: float) -> None:
        super().__init__(name="regflow-server-watchdog", daemon=True)
        self.api_url, self.as_json, self.grace_s = api_url, as_json, grace_s
        self.stopped = threading.Event()
        self.saved_stderr: int | None = None
        self.lock = threading.Lock()  # the thread and stop() both restore stderr

    def run(self) -> None:
        silent_since: float | None = None
        while not self.stopped.wait(POLL_S):
            if server_answers(self.api_url):
                silent_since = None
                self._unmute()
                continue
            now = time.monotonic()
            if silent_since is None:
                silent_since = now
                self._mute()
            elif now - silent_since >= self.grace_s and not self.stopped.is_set():
                self._give_up(now - silent_since)

    def _mute(self) -> None:
        with self.lock:
            if self.saved_stderr is None:
                sys.stderr.flush()
                self.saved_stderr = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)

    def _unmute(self) -> None:
        with self.lock:
            if self.saved_stderr is not None:
                os.dup2(self.saved_stderr, 2)
                os.close(self.saved_stderr)
                self.saved_stderr = None

    def _give_up(self, silent_s: float) -> None:
        message = (
            f"the Prefect server at {self.api_url} stopped answering for {silent_s:.0f} s "
            "during the run, so the run was stopped. A run stopped before its registry commit "
            "registers nothing and leaves no run folder; check the server, then run again"
        )
        fd = self.saved_stderr if self.saved_stderr is not None else 2
        os.write(fd, f"regflow: {message}\n".encode())
        if self.as_json:
            payload = {"status": "failed", "error": "ServerUnavailable", "message": message}
            sys.stdout.write(json.dumps(payload) + "\n")
            sys.stdout.flush()
        os._exit(1)  # the flow's threads are blocked in retries: nothing else would end them

    def stop(self) -> None:
        self.stopped.set()
        self._unmute()


@contextmanager
def server_watchdog(as_json: bool, grace_s: float = GRACE_S) -> Iterator[None]:
    """Watch PREFECT_API_URL's server while the block runs; without one, do nothing."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL")
    if not api_url:  # the temporary server lives and dies with this process
        yield
        return
    watchdog = _Watchdog(api_url, as_json, grace_s)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.stop()
