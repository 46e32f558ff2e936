"""A local Prefect server that regflow starts once and reuses across commands.

Without PREFECT_API_URL, Prefect 3 starts a temporary server inside every command and stops it
at the end; on a busy 2-core machine that costs about 5 s a command (docs/benchmarks.md,
"First run"). A server that outlives the command costs that once, and keeps the run history
for the Prefect UI. Prefect's own `prefect server start --background` keeps only a pid file,
with no port or URL, and must import Prefect before it spawns anything; this module spawns the
same `prefect server start` detached, with a state file that records pid, port and URL, so a
command can find it (or start it while it imports torch) without importing Prefect.

The state lives next to the server's database, in PREFECT_HOME: one server per Prefect home.
Standard library only: the commands call it before their heavy imports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from regflow.errors import RegflowError

HOST = "127.0.0.1"
DEFAULT_PORT = 4200  # Prefect's own default, so the UI is where Prefect's docs say it is
STATE_FILE = "regflow-server.json"
LOG_FILE = "regflow-server.log"
NO_SERVER_ENV = "REGFLOW_NO_SERVER"  # 1: keep Prefect's temporary server per command
START_TIMEOUT_S = 120.0  # a first start runs the database migrations: slow on a busy machine
STOP_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 2.0
FLOW_COMMANDS = frozenset({"train", "predict"})  # the commands that run a flow on the server

# The server this process spawned in `start_for_command`, and whether it was new, until the
# command's `take_early_start` claims it (one command per process: the CLI's).
_early_start: tuple[ServerState, bool] | None = None


@dataclass(frozen=True)
class ServerState:
    """What `regflow server start` wrote: enough to find, use and stop the server."""

    pid: int
    port: int
    api_url: str
    log: str
    prefect_home: str

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def prefect_home() -> Path:
    """PREFECT_HOME as Prefect resolves it from the environment (its default: ~/.prefect)."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def server_answers(api_url: str) -> bool:
    """Whether the Prefect API at `api_url` answers its /health endpoint."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _is_server_process(pid: int) -> bool:
    """The pid runs, is no zombie, and (where /proc tells) is a Prefect server: a pid reused by
    another program after a reboot must never be signalled."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not one regflow started
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS): the signal check is all there is
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"prefect" in cmdline and b"server" in cmdline


def _state_path(home: Path) -> Path:
    return home / STATE_FILE


def read_state(home: Path | None = None) -> ServerState | None:
    """The recorded server, or None; a record whose process is gone is removed (stale)."""
    path = _state_path(home or prefect_home())
    try:
        state = ServerState(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        path.unlink(missing_ok=True)  # unreadable: nothing can be found or stopped with it
        return None
    if not _is_server_process(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def _write_state(state: ServerState) -> None:
    path = _state_path(Path(state.prefect_home))
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(asdict(state), indent=2) + "\n")
    os.replace(staging, path)


@contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    """Two commands starting at once must not both spawn a server (one would be orphaned)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the state file's last writer wins
        yield
        return
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f"{STATE_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def choose_port(preferred: int = DEFAULT_PORT) -> int:
    """`preferred` when it is free, else one the system hands out."""
    if preferred and _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def spawn_server(home: Path | None = None, port: int = DEFAULT_PORT) -> tuple[ServerState, bool]:
    """The running server of `home`, or a new detached one (not yet answering): (state, new)."""
    home = home or prefect_home()
    with _start_lock(home):
        running = read_state(home)
        if running is not None:
            return running, False
        chosen = choose_port(port)
        log_path = home / LOG_FILE
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(PREFECT_HOME=str(home))
        env.setdefault("DO_NOT_TRACK", "1")
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        command = [sys.executable, "-m", "prefect", "server", "start"]
        command += ["--host", HOST, "--port", str(chosen)]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session: Ctrl-C in the terminal that started it does not stop it,
                # and `stop` can signal its whole process group.
                start_new_session=True,
            )
        state = ServerState(
            pid=process.pid,
            port=chosen,
            api_url=f"http://{HOST}:{chosen}/api",
            log=str(log_path),
            prefect_home=str(home),
        )
        _write_state(state)
        return state, True


def wait_until_healthy(state: ServerState, timeout_s: float = START_TIMEOUT_S) -> None:
    """Return once the server answers; RegflowError naming its log when it dies or is late."""
    deadline = time.monotonic() + timeout_s
    while not server_answers(state.api_url):
        if not _is_server_process(state.pid):
            _state_path(Path(state.prefect_home)).unlink(missing_ok=True)
            raise RegflowError(
                f"the local Prefect server exited while starting; its log: {state.log}"
            )
        if time.monotonic() > deadline:
            raise RegflowError(
                f"the local Prefect server at {state.ui_url} did not answer within "
                f"{timeout_s:.0f} s; its log: {state.log} (`regflow server stop` stops it)"
            )
        time.sleep(0.1)


def stop_server(home: Path | None = None) -> ServerState | None:
    """Stop the recorded server and its children and remove the record; None if none ran."""
    home = home or prefect_home()
    with _start_lock(home):
        state = read_state(home)
        if state is None:
            return None
        _signal_group(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _is_server_process(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_server_process(state.pid):
            _signal_group(state.pid, signal.SIGKILL)
        _state_path(home).unlink(missing_ok=True)
        return state


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the server leads its own session: this reaches its children
    except (ProcessLookupError, PermissionError):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def _profile_api_url(home: Path) -> str | None:
    """PREFECT_API_URL from the active Prefect profile (`prefect config set ...`), if any."""
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    value = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(value) if value else None


def server_wanted() -> bool:
    """Whether a command should use (or start) regflow's server: not when the user named a
    server (PREFECT_API_URL, in the environment or the active profile) or opted out."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    if os.environ.get(NO_SERVER_ENV, "").strip().lower() not in {"", "0", "false", "no"}:
        return False
    return _profile_api_url(prefect_home()) is None


def start_for_command(argv: Sequence[str]) -> None:
    """At process start, before any heavy import: spawn (or find) the server when `argv` runs
    a flow. Its start-up, about 4 s of CPU that is mostly Prefect's server imports, then runs
    beside the command's own imports and checks instead of after them. A failure here is
    left for the command's own `spawn_server` call to report."""
    global _early_start
    if not argv or argv[0] not in FLOW_COMMANDS or "--help" in argv or not server_wanted():
        return
    with suppress(RegflowError, OSError):
        _early_start = spawn_server()


def take_early_start() -> tuple[ServerState, bool] | None:
    """The (state, new) that `start_for_command` spawned, once; None if it spawned nothing."""
    global _early_start
    claimed, _early_start = _early_start, None
    return claimed


def stop_unused_early_server() -> None:
    """Stop the server `start_for_command` started if the command ended before using it (a
    usage error, a typo in a path): a command that fails its checks leaves nothing running."""
    claimed = take_early_start()
    if claimed is not None and claimed[1]:
        stop_server(Path(claimed[0].prefect_home))
