"""Index rows to entities: the queries every registry job shares, and the one place where
rows of the index become `RegisteredModel`, `ModelVersion` and `AliasEvent`.

Also what goes *into* rows the same way everywhere: the canonical JSON bytes of a record
and the default actor name.
"""

from __future__ import annotations

import getpass
import json
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Row, func, select

from regflow.registry import index as ix
from regflow.registry.errors import NotFoundError
from regflow.registry.records import AliasEvent, ModelVersion, RegisteredModel

E = TypeVar("E", bound=BaseModel)


def canonical_json(value: Any) -> bytes:
    """The one byte form of a manifest, so its hash is reproducible from the index row."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def default_actor() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "user:unknown"


# -- queries -------------------------------------------------------------------------------


def version_row(
    conn: Connection, name: str, version: int, *, lock: bool = False
) -> Row[Any] | None:
    q = select(ix.model_versions).where(
        ix.model_versions.c.name == name, ix.model_versions.c.version == version
    )
    return conn.execute(q.with_for_update() if lock else q).first()


def alias_version(conn: Connection, name: str, alias: str) -> int | None:
    version: int | None = conn.execute(
        select(ix.aliases.c.version).where(ix.aliases.c.name == name, ix.aliases.c.alias == alias)
    ).scalar()
    return version


def alias_map(conn: Connection, name: str) -> dict[str, int]:
    """Every alias of `name` and the version it holds, by alias name."""
    rows = conn.execute(
        select(ix.aliases.c.alias, ix.aliases.c.version)
        .where(ix.aliases.c.name == name)
        .order_by(ix.aliases.c.alias)
    )
    return {alias: version for alias, version in rows}


def aliases_by_version(conn: Connection, name: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for alias, version in alias_map(conn, name).items():
        out.setdefault(version, []).append(alias)
    return out


# -- rows to entities ----------------------------------------------------------------------


def read_model(conn: Connection, name: str, location: str) -> RegisteredModel:
    """The model `name` with its counts and aliases; NotFoundError lists the known names."""
    row = conn.execute(
        select(ix.registered_models).where(ix.registered_models.c.name == name)
    ).first()
    if row is None:
        known = conn.execute(
            select(ix.registered_models.c.name).order_by(ix.registered_models.c.name)
        ).scalars()
        listed = ", ".join(known) or "none"
        raise NotFoundError(f"no model named {name!r} in registry {location} (models: {listed})")
    stats = conn.execute(
        select(func.max(ix.model_versions.c.version), func.count()).where(
            ix.model_versions.c.name == name, ix.model_versions.c.status == "ready"
        )
    ).one()
    return _from_row(
        RegisteredModel,
        row,
        tags=row.tags or {},
        latest_version=stats[0],
        versions=stats[1],
        aliases=alias_map(conn, name),
    )


def version_from_row(row: Row[Any], aliases: list[str]) -> ModelVersion:
    files = (row.manifest or {}).get("files", [])
    # The manifest itself is stored too; its bytes are the canonical JSON it was hashed from.
    size = sum(int(f.get("size", 0)) for f in files) + len(canonical_json(row.manifest or {}))
    return _from_row(
        ModelVersion, row, tags=row.tags or {}, aliases=sorted(aliases), size_bytes=size
    )


def event_from_row(row: Row[Any]) -> AliasEvent:
    return _from_row(AliasEvent, row)


def _from_row(entity: type[E], row: Row[Any], **computed: Any) -> E:
    """`entity` with each field not in `computed` taken from the row's column of that name."""
    # By field name, so a field added to records.py and the index needs no mapping here.
    columns = {f: getattr(row, f) for f in entity.model_fields if f not in computed}
    return entity(**columns, **computed)
