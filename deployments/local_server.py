"""A throw-away `prefect server start` on loopback, for the integration test and screenshots.

The server gets its own PREFECT_HOME (its SQLite database lives there) and a free port; it is
started in its own process group so that stopping it also stops the uvicorn child it spawns.
Nothing here touches the user's ~/.prefect.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The checkout this file is in, for checkout-only scripts (scripts/ui_screenshots.py); in an
# installed wheel it is site-packages/regflow, so nothing the package runs may rely on it.
REPO_ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerStartError(RuntimeError):
    pass


@dataclass
class LocalServer:
    home: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a client process needs to talk to this server and only this one."""
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("PREFECT_PROFILE", None)
        env.pop("PREFECT_API_KEY", None)
        env.update(extra or {})
        return env

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, *, ui: bool, timeout: float) -> None:
        # The first start on a machine migrates a new database (and copies the UI's static
        # files when the UI is on): allow for a slow start on a loaded machine.
        env = self.env({"PREFECT_SERVER_UI_ENABLED": "true" if ui else "false"})
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"prefect server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        self.stop()
        raise ServerStartError(
            f"prefect server not healthy after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextlib.contextmanager
def local_server(
    *, ui: bool = False, timeout: float = 120.0, keep_home: bool = False
) -> Iterator[LocalServer]:
    """Start a server with a fresh PREFECT_HOME on a free loopback port; always stop it."""
    home = Path(tempfile.mkdtemp(prefix="regflow-prefect-server-"))
    server = LocalServer(home=home, port=free_port(), log_path=home / "server.log")
    try:
        server.start(ui=ui, timeout=timeout)
        yield server
    finally:
        server.stop()
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)
