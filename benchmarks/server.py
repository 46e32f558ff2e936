"""A real Prefect server for the end-to-end runs: loopback, temporary home, stopped at the end."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_env(home: str, api_url: str | None = None) -> dict[str, str]:
    """The environment for the server and its clients: never the user's ~/.prefect, no telemetry."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=home,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    else:
        env.pop("PREFECT_API_URL", None)
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def prefect_server() -> Iterator[tuple[str, dict[str, str]]]:
    """Yields (api_url, client env); the server is stopped (its process group) on exit."""
    home = tempfile.mkdtemp(prefix="regflow-bench-prefect-")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    log = open(Path(home) / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=prefect_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stopping it stops its workers too
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(api_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (Path(home) / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the Prefect server did not start:\n{tail}")
            time.sleep(0.5)
        yield api_url, prefect_env(home, api_url)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)
