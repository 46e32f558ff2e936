"""`copy_registry`: move a registry, whole, into another one (a local registry into a team's).

Every model comes across with its version numbers (deleted versions as deleted rows, so a
number is never handed out twice), each live version's files (checked against its manifest
on the way, so a damaged version is refused rather than copied), its aliases, the alias
audit log in order and the monitoring records. The destination's index rows commit in one
transaction after every file is in place; a failure leaves at most orphan folders in the
destination's store, which `gc` removes. Written here rather than with a generic tool: the
index rows and the files must move together and be verified against each other.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, insert, inspect, select

from regflow.errors import Problem
from regflow.registry import index as ix
from regflow.registry.errors import IntegrityError, InvalidReferenceError
from regflow.registry.reading import RegistryBase
from regflow.registry.rows import canonical_json
from regflow.registry.store import MANIFEST_FILE, Staged, sha256_bytes


@dataclass(frozen=True)
class CopyReport:
    """What `copy_registry` brought across."""

    models: list[str]
    versions: int
    deleted_versions: int
    files: int
    bytes: int
    alias_events: int
    monitoring_records: int


def _rows(conn: Connection, table: Table, order: Any) -> list[dict[str, Any]]:
    if not inspect(conn).has_table(table.name):  # an older index without this table
        return []
    return [dict(r._mapping) for r in conn.execute(select(table).order_by(*order)).all()]


def _without_id(row: dict[str, Any]) -> dict[str, Any]:
    # Surrogate keys are the destination's to hand out; order is kept by inserting in order.
    return {k: v for k, v in row.items() if k != "id"}


def _problem(check: str, ref: str, path: str, message: str) -> Problem:
    # The check names `verify` uses for the same findings (docs/errors.md).
    where = ref.replace(":", "/")
    return Problem(check=check, message=f"{path} {message}", file=f"{where}/{path}")


def _stage_version(src: RegistryBase, dst: RegistryBase, row: dict[str, Any]) -> Staged:
    """The source version's files, checked against its manifest, staged in `dst`'s store."""
    name, version, manifest = row["name"], row["version"], row["manifest"]
    manifest_bytes = src.store.read_bytes(name, version, MANIFEST_FILE)
    ref = f"{name}:{version}"
    if sha256_bytes(manifest_bytes) != row["manifest_sha256"]:
        raise IntegrityError(
            ref, [_problem("manifest_changed", ref, MANIFEST_FILE, "does not match the index")]
        )
    with tempfile.TemporaryDirectory(prefix="regflow-copy-") as tmp:
        root = Path(tmp)
        for entry in manifest["files"]:
            data = src.store.read_bytes(name, version, entry["path"])
            if sha256_bytes(data) != entry["sha256"]:
                message = "does not match its manifest; run `regflow models verify` on it"
                raise IntegrityError(ref, [_problem("file_changed", ref, entry["path"], message)])
            target = root / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (root / MANIFEST_FILE).write_bytes(manifest_bytes)
        return dst.store.stage(root, reserved=set())


def copy_registry(src: RegistryBase, dst: RegistryBase) -> CopyReport:
    """Copy every model of `src` into `dst`, which must hold none of them yet."""
    dst._index.check_writable("copy models into it")
    with src._index.read() as conn:
        models = _rows(conn, ix.registered_models, [ix.registered_models.c.name])
        counters = _rows(conn, ix.version_counters, [ix.version_counters.c.name])
        versions = _rows(conn, ix.model_versions, [ix.model_versions.c.id])
        aliases = _rows(conn, ix.aliases, [ix.aliases.c.name, ix.aliases.c.alias])
        events = _rows(conn, ix.alias_events, [ix.alias_events.c.id])
        monitoring = _rows(conn, ix.monitoring, [ix.monitoring.c.id])
    names = [m["name"] for m in models]
    with dst._index.read() as conn:
        held = set(conn.execute(select(ix.registered_models.c.name)).scalars())
    clash = sorted(held & set(names))
    if clash:
        raise InvalidReferenceError(
            f"{dst.location} already holds {', '.join(clash)}: copy into a registry without "
            "these models (histories are not merged)"
        )
    live = [v for v in versions if v["status"] == "ready"]
    staged: list[tuple[Staged, dict[str, Any]]] = []
    try:
        for row in live:
            staged.append((_stage_version(src, dst, row), row))
        with dst._index.write() as conn:
            for table, rows in (
                (ix.registered_models, models),
                (ix.version_counters, counters),
            ):
                for r in rows:
                    conn.execute(insert(table).values(**r))
            for stage, row in staged:
                dst.store.publish(stage, row["name"], row["version"])
            for table, rows in (
                (ix.model_versions, versions),
                (ix.aliases, aliases),
                (ix.alias_events, events),
                (ix.monitoring, monitoring),
            ):
                for r in rows:
                    conn.execute(insert(table).values(**_without_id(r)))
    except BaseException:
        for stage, _ in staged:
            dst.store.discard(stage)  # a no-op for those already published
        raise
    files = sum(len(v["manifest"]["files"]) + 1 for v in live)
    size = sum(
        sum(int(f["size"]) for f in v["manifest"]["files"]) + len(canonical_json(v["manifest"]))
        for v in live
    )
    return CopyReport(
        models=names,
        versions=len(live),
        deleted_versions=len(versions) - len(live),
        files=files,
        bytes=size,
        alias_events=len(events),
        monitoring_records=len(monitoring),
    )
