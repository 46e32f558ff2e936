"""PostgreSQL only: what a server can do to a client that a SQLite file cannot.

A connection killed by the server in the middle of a registration, the server restarted
between two uses of one open registry, and a URL whose driver is not installed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer
from sqlalchemy import event

from regflow.registry import InvalidReferenceError, Registry, RegistryError


@pytest.fixture
def pg_registry(
    pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Registry]]:
    monkeypatch.setenv("REGFLOW_REGISTRY_STORE", str(tmp_path / "store"))
    url = pg_server.create_database()
    reg = Registry.open(url)
    yield url, reg
    reg.close()


def test_connection_dropped_mid_registration(
    pg_server: PostgresServer, pg_registry: tuple[str, Registry], run_factory: Callable[..., Path]
) -> None:
    url, reg = pg_registry
    reg.register("demo", run_factory(coef=[1.0]))
    killed: list[int] = []

    # When the registration inserts its version row (the number is allocated, the files are
    # published), the server ends that connection, as an admin or a failover would.
    def drop(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO model_versions") and not killed:
            pid = conn.connection.dbapi_connection.info.backend_pid
            with psycopg.connect(pg_server.dsn(url.rsplit("/", 1)[1]), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)

    event.listen(reg._index.engine, "before_cursor_execute", drop)
    try:
        with pytest.raises(RegistryError, match=r"connection was lost.*nothing of this"):
            reg.register("demo", run_factory(coef=[2.0]))
    finally:
        event.remove(reg._index.engine, "before_cursor_execute", drop)
    assert killed

    # No half version: no row, no folder, no staging left, the counter rolled back too.
    assert [v.version for v in reg.list_versions("demo")] == [1]
    assert sorted(p.name for p in (Path(reg.store.location) / "demo").iterdir()) == ["1"]
    assert reg.store.list_staging() == []
    assert reg.verify() == []
    # The next registration works, on the same open registry (the dead connection is gone).
    assert reg.register("demo", run_factory(coef=[3.0])).version == 2
    with Registry.open(url) as other:
        assert [v.version for v in other.list_versions("demo")] == [1, 2]


def test_server_restarted_between_runs(
    pg_server: PostgresServer, pg_registry: tuple[str, Registry], run_factory: Callable[..., Path]
) -> None:
    url, reg = pg_registry
    reg.register("demo", run_factory(coef=[1.0]))
    reg.promote("demo:1")
    pg_server.restart()  # same data folder and port; every open connection is gone
    # pool_pre_ping replaces the pooled connections the restart closed.
    assert reg.resolve("demo@champion").version == 1
    assert reg.register("demo", run_factory(coef=[2.0])).version == 2
    reg.promote("demo:2")
    with Registry.open(url) as again:
        assert [v.version for v in again.list_versions("demo")] == [1, 2]
        assert [(e.from_version, e.to_version) for e in again.history("demo")] == [
            (None, 1),
            (1, 2),
        ]
        assert again.verify() == []


@pytest.mark.parametrize(
    ("url", "package"),
    [
        ("postgresql+psycopg://u@localhost/db", "psycopg[binary]"),
        ("postgresql+psycopg2://u@localhost/db", "psycopg2-binary"),
    ],
)
def test_a_missing_driver_names_the_package(
    url: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules is how Python itself reports a module that cannot be imported.
    monkeypatch.setitem(sys.modules, package.partition("[")[0].replace("-binary", ""), None)
    with pytest.raises(InvalidReferenceError, match=re.escape(f"pip install '{package}'")):
        Registry.open(url, store="unused")
