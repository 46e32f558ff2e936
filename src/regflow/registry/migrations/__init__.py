"""Schema migrations of the registry index, through Alembic on regflow's own connection.

Revisions live in `versions/` (0001: schema 1, 0002: adds `monitoring`). Each runs inside the
caller's write transaction, so a failed upgrade leaves the index as it was. An index written
before Alembic has no `alembic_version` table; its `registry_meta.schema_version` (1 or 2)
names the revision it matches, which is stamped before upgrading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"
# registry_meta.schema_version of an index from before Alembic -> the revision it matches.
LEGACY_REVISIONS = {1: "0001", 2: "0002"}
# More revision folders Alembic should see (tests add a later migration here).
extra_version_locations: list[str] = []


def _escape(path: str) -> str:
    return path.replace("%", "%%")  # Config values go through ConfigParser interpolation


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's config without an ini file; `connection` is what env.py migrates."""
    cfg = Config()
    cfg.set_main_option("script_location", _escape(str(HERE)))
    cfg.set_main_option("path_separator", "os")
    locations = [str(HERE / "versions"), *extra_version_locations]
    cfg.set_main_option("version_locations", os.pathsep.join(_escape(p) for p in locations))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=8)
def _script(locations: tuple[str, ...]) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def script_directory() -> ScriptDirectory:
    """The revisions this regflow knows (parsed once per set of locations)."""
    return _script(tuple(extra_version_locations))


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None  # versions/ always holds 0001
    return head


@dataclass(frozen=True)
class SchemaState:
    """Where an index stands: its revision (None: no tables yet) against this regflow's head."""

    current: str | None
    head: str
    stamped: bool  # it has Alembic's version table (else: from before Alembic, or new)
    known: bool  # this regflow has the revision (else: written by a newer regflow)

    @property
    def empty(self) -> bool:
        return self.current is None

    @property
    def up_to_date(self) -> bool:
        return self.stamped and self.current == self.head


def schema_state(conn: Connection) -> SchemaState:
    """Read the index's schema revision; refuses a database that holds other tables only."""
    head = head_revision()
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE in tables:
        current = MigrationContext.configure(conn).get_current_revision()
        return SchemaState(current, head, stamped=True, known=_is_known(current))
    if "registry_meta" in tables:
        number = conn.execute(
            text("SELECT value FROM registry_meta WHERE key = 'schema_version'")
        ).scalar()
        current = LEGACY_REVISIONS.get(int(number)) if number is not None else None
        if current is None:
            return SchemaState(f"schema {number}", head, stamped=False, known=False)
        return SchemaState(current, head, stamped=False, known=True)
    if tables:
        raise NotAnIndex(sorted(tables))
    return SchemaState(None, head, stamped=False, known=True)


def _is_known(revision: str | None) -> bool:
    if revision is None:
        return True
    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:  # alembic's ResolutionError: a revision none of our files define
        return False


class NotAnIndex(Exception):
    """The database holds tables, but not a regflow registry index's."""

    def __init__(self, tables: list[str]):
        self.tables = tables
        super().__init__(f"tables {', '.join(tables[:5])} but no registry_meta")


def upgrade(conn: Connection, state: SchemaState) -> None:
    """Stamp an index from before Alembic with the revision it matches, then upgrade to head.

    `conn` must be inside the caller's write transaction; nothing is committed here.
    """
    cfg = alembic_config(conn)
    if not state.stamped and state.current is not None:
        command.stamp(cfg, state.current)
    command.upgrade(cfg, "head")
