"""Reading the registry: what every Registry part holds (index, store, location) and the
lookups they all build on: list models and versions, resolve a reference to a version.

`RegistryBase` is the root of the mixins that make up `Registry` (see registry.py).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from regflow.registry import index as ix
from regflow.registry.errors import NotFoundError
from regflow.registry.index import RegistryIndex
from regflow.registry.records import ModelVersion, RegisteredModel
from regflow.registry.references import ModelRef, check_name, parse_ref
from regflow.registry.rows import (
    alias_map,
    alias_version,
    aliases_by_version,
    read_model,
    version_from_row,
    version_row,
)
from regflow.registry.store import FileStore


class RegistryBase:
    """What every part of `Registry` holds (index, store, location) and reads through."""

    def __init__(self, index: RegistryIndex, store: FileStore, location: str):
        self._index = index
        self.store = store
        self.location = location

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def list_models(self) -> list[RegisteredModel]:
        with self._index.read() as conn:
            names = conn.execute(
                select(ix.registered_models.c.name).order_by(ix.registered_models.c.name)
            ).scalars()
            return [self._model(conn, n) for n in list(names)]

    def get_model(self, name: str) -> RegisteredModel:
        with self._index.read() as conn:
            return self._model(conn, check_name(name))

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        with self._index.read() as conn:
            self._model(conn, check_name(name))  # NotFound for unknown names
            q = select(ix.model_versions).where(ix.model_versions.c.name == name)
            if not include_deleted:
                q = q.where(ix.model_versions.c.status == "ready")
            rows = conn.execute(q.order_by(ix.model_versions.c.version)).all()
            held = aliases_by_version(conn, name)
            return [version_from_row(r, held.get(r.version, [])) for r in rows]

    def find_unchanged(self, name: str, data_sha256: str, fingerprint: str) -> ModelVersion | None:
        """The newest live version of `name` trained on the same data, settings and regflow
        (its lineage records the same `fingerprint`), or None."""
        check_name(name)
        with self._index.read() as conn:
            rows = conn.execute(
                select(ix.model_versions)
                .where(
                    ix.model_versions.c.name == name,
                    ix.model_versions.c.status == "ready",
                    ix.model_versions.c.data_sha256 == data_sha256,
                )
                .order_by(ix.model_versions.c.version.desc())
            ).all()
            for row in rows:
                if (row.lineage or {}).get("fingerprint") == fingerprint:
                    held = aliases_by_version(conn, name).get(row.version, [])
                    return version_from_row(row, held)
        return None

    def latest_version_number(self, name: str) -> int | None:
        """The highest version number ever handed out for `name` (deleted ones too), or None."""
        check_name(name)
        with self._index.read() as conn:
            return conn.execute(
                select(func.max(ix.model_versions.c.version)).where(
                    ix.model_versions.c.name == name
                )
            ).scalar()

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names now: `name:version`, `name@alias`, `name` (latest)."""
        parsed = parse_ref(ref)
        with self._index.read() as conn:
            return self._resolve(conn, parsed)

    # -- inside a transaction the caller holds ----------------------------------------------

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        return read_model(conn, name, self.location)

    def _resolve(self, conn: Connection, ref: ModelRef) -> ModelVersion:
        self._model(conn, ref.name)
        version: int | None
        if ref.alias is not None:
            version = alias_version(conn, ref.name, ref.alias)
            if version is None:
                held = alias_map(conn, ref.name)
                listed = ", ".join(f"@{a}" for a in held) or "none"
                raise NotFoundError(f"{ref} is not set (aliases of {ref.name}: {listed})")
        elif ref.version is not None:
            version = ref.version
        else:
            version = conn.execute(
                select(func.max(ix.model_versions.c.version)).where(
                    ix.model_versions.c.name == ref.name, ix.model_versions.c.status == "ready"
                )
            ).scalar()
            if version is None:
                raise NotFoundError(f"model {ref.name!r} has no versions")
        row = version_row(conn, ref.name, version)
        if row is None:
            raise NotFoundError(f"{ref.name}:{version} does not exist")
        if row.status != "ready":
            raise NotFoundError(f"{ref.name}:{version} was deleted at {row.deleted_at}")
        return version_from_row(row, aliases_by_version(conn, ref.name).get(version, []))
