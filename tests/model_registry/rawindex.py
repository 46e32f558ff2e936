"""Raw SQL on a registry's index, for tests that play someone editing the database by hand.

Goes through the registry's own engine, so it works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from regflow.registry import Registry


def edit_index(reg: Registry, sql: str, **params: Any) -> None:
    """Run one statement on the index in its own committed transaction."""
    with reg._index.engine.connect() as conn, conn.begin():
        conn.execute(text(sql), params)
