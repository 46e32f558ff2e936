"""The registry index: SQLAlchemy Core tables and the engine that serialises writers.

SQLite (the default) runs in WAL mode with a busy timeout, and every write transaction starts
with `BEGIN IMMEDIATE`, so concurrent processes queue for the write lock instead of failing
half way. The same statements run on PostgreSQL, where `SELECT ... FOR UPDATE` and the
counter row's lock give the same serialisation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from regflow.registry import migrations
from regflow.registry.errors import (
    InvalidReferenceError,
    RegistryError,
    RegistryReadOnlyError,
    SchemaVersionError,
)

# 1: versions, aliases, audit log. 2: adds `monitoring`. The schema itself changes only
# through the Alembic revisions in migrations/ (0001, 0002); registry_meta.schema_version
# keeps the number for regflow from before Alembic, which refuses a number above its own.
SCHEMA_VERSION = 2
_WRITE = "regflow_write"
# pg_advisory_xact_lock key: serialises migrations of one PostgreSQL database.
_MIGRATION_LOCK = 0x7265_6766  # "regf"

metadata = MetaData()

registry_meta = Table(
    "registry_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    Column("created_at", String(40), nullable=False),
)

# One row per model: the next number to hand out. Only ever incremented, so a deleted
# version's number is never handed out again.
version_counters = Table(
    "version_counters",
    metadata,
    Column("name", String(128), ForeignKey("registered_models.name"), primary_key=True),
    Column("next_version", Integer, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), ForeignKey("registered_models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("deleted_at", String(40)),
    Column("deleted_by", Text),
    Column("actor", Text),
    Column("description", Text),
    Column("tags", JSON, nullable=False),
    Column("run_id", String(128)),
    Column("data_sha256", String(64)),
    Column("signature", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("files", Text, nullable=False),
    UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(128), ForeignKey("registered_models.name"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),
    PrimaryKeyConstraint("name", "alias"),
)

# Append-only: every alias move with who, why and the metrics that decided it.
alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("name", String(128), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("actor", Text),
    Column("reason", Text),
    Column("metrics", JSON),
    Index("ix_alias_events_name_alias", "name", "alias", "id"),
)


# Append-only: each scoring run that could judge a version (its data had the target column).
monitoring = Table(
    "monitoring",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_id", String(128)),
    Column("data_sha256", String(64)),
    Column("rows", Integer, nullable=False),
    Column("failed", JSON, nullable=False),
    Column("report", JSON, nullable=False),
    Index("ix_monitoring_name_version", "name", "version", "id"),
)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def sqlite_read_only_url(db: Path, *, immutable: bool) -> str:
    """A SQLAlchemy URL that opens the SQLite file `db` read-only (SQLite URI `mode=ro`).

    `immutable=1` also tells SQLite that nobody writes the file, so it needs no -shm/-wal
    (a WAL database in a folder where they cannot be created opens only that way).
    """
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"sqlite:///file:{quote(str(db))}?{flags}&uri=true"


def create_index_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for the index; SQLite gets WAL, a busy timeout and explicit BEGINs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would not BEGIN before
        # SELECTs or DDL); SQLAlchemy emits our own BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout = 60000")
            if not read_only:  # switching the journal mode writes the file
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that later upgrades
        # can fail with SQLITE_BUSY without waiting, which the busy timeout cannot help.
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class RegistryIndex:
    """The index database: read and write transactions, and its schema (see migrations)."""

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        location: str | None = None,
        migrate: bool = False,
    ):
        """`read_only`: `url` opens the database read-only, and `write()` refuses.

        `migrate`: upgrade an older schema on any database (`regflow models migrate`);
        without it only SQLite upgrades itself (see `_ensure_schema`).
        """
        self.url = url
        self.read_only = read_only
        self.location = location or url
        self.engine = create_index_engine(url, read_only=read_only)
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.revision_before: str | None = None
        try:
            self.revision_before = self._ensure_schema(migrate)
        except BaseException:
            self.engine.dispose()
            raise

    def _ensure_schema(self, migrate: bool) -> str | None:
        """Create, upgrade or accept the schema; returns the revision found (None: new).

        A new index gets the current schema on any database. An older one upgrades itself
        when it is a SQLite file opened writable (one user's file, upgraded in place); read
        only, it reads as before. A shared server's index waits for `regflow models
        migrate`, so one client's upgrade never surprises the others. A newer one is refused.
        """
        # Readers of an up-to-date registry need no write lock (or a writable database).
        with self.read() as conn:
            state = self._state(conn)
        if state.up_to_date:
            return state.current
        if self.read_only:
            if state.empty:
                raise InvalidReferenceError(
                    f"{self.location} is not a regflow registry index (no tables), and it is "
                    "read-only"
                )
            return state.current  # an older index still reads; missing tables read as empty
        if not (self.is_sqlite or migrate or state.empty):
            found = state.current if state.stamped else f"{state.current} (not yet stamped)"
            raise SchemaVersionError(
                f"registry index {self.location} has schema revision {found}; this "
                f"regflow needs {state.head}: run `regflow models migrate --registry "
                f"{self.location}` (back the database up first)"
            )
        # One write transaction, so processes opening a new or older index at once queue
        # (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock) and only the first migrates.
        with self.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            state = self._state(conn)
            if not state.up_to_date:
                migrations.upgrade(conn, state)
        return state.current

    def _state(self, conn: Connection) -> migrations.SchemaState:
        try:
            state = migrations.schema_state(conn)
        except migrations.NotAnIndex as exc:
            raise InvalidReferenceError(
                f"{self.location} is not a regflow registry index ({exc})"
            ) from None
        if not state.known:
            raise SchemaVersionError(
                f"registry index {self.location} has schema revision {state.current}, which "
                f"this regflow does not know (its newest is {state.head}): it was written by "
                "a newer regflow; upgrade regflow to use it"
            )
        return state

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: commits at the end, rolls everything back on any error."""
        self.check_writable()
        with self._lost_connection(), self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def check_writable(self, action: str = "change it") -> None:
        """RegistryReadOnlyError when this index was opened read-only."""
        if self.read_only:
            raise RegistryReadOnlyError(self.location, action)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for several queries."""
        with self._lost_connection(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _lost_connection(self) -> Iterator[None]:
        """A connection the server dropped (restart, admin, failover) as one RegistryError.

        The transaction died with it, so nothing of it was committed; the pool has already
        discarded the connection, so the next call reconnects.
        """
        try:
            yield
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            raise RegistryError(
                f"registry index {self.location}: the database connection was lost "
                f"({str(exc.orig).strip()}); nothing of this operation was committed"
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()
