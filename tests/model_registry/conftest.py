from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_server import PostgresServer
from runfolder import make_run

from regflow.registry import Registry
from regflow.registry.location import ENV_STORE

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session, stopped at the end even on failure.

    Not skipped when it cannot start: the dev extra installs it, so that is a failure.
    """
    base = Path(tempfile.mkdtemp(prefix="regflow-pg-"))  # pytest's tmp_path is 0o700
    base.chmod(0o755)  # the server's user (nobody, under root) must reach its folder
    server = PostgresServer(base / "server")
    try:
        server.setup()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (visibly, in the summary) PostgreSQL cases of tests about the SQLite file."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("sqlite_only")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("backend") == "postgresql"  # type: ignore[attr-defined]
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def registry_uri(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Where the test's registry lives: a folder (SQLite) or a fresh PostgreSQL database.

    A PostgreSQL index keeps its files in $REGFLOW_REGISTRY_STORE, set here so the CLI and
    subprocesses find them from the URL alone.
    """
    if backend == "sqlite":
        return str(tmp_path / "registry")
    server: PostgresServer = request.getfixturevalue("pg_server")
    monkeypatch.setenv(ENV_STORE, str(tmp_path / "registry" / "store"))
    return server.create_database()


@pytest.fixture
def registry(registry_uri: str) -> Iterator[Registry]:
    reg = Registry.open(registry_uri)
    yield reg
    reg.close()


@pytest.fixture
def run_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1_000_000))

    def build(**kwargs) -> Path:
        return make_run(tmp_path / "runs" / f"run-{next(counter)}", **kwargs)

    return build
