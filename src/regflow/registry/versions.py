"""Registering and deleting versions: check and parse a run folder, allocate the next version
number, publish its files with their manifest, and mark a version deleted.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy import exc as sa_exc

from regflow.errors import InvalidInputError
from regflow.io.hashing import FileDigest
from regflow.io.model_files import weights_from_bytes
from regflow.registry import index as ix
from regflow.registry.aliases import AliasMove, move_alias
from regflow.registry.errors import AliasInUseError, InvalidReferenceError
from regflow.registry.index import utcnow
from regflow.registry.reading import RegistryBase
from regflow.registry.records import ModelVersion
from regflow.registry.references import ModelRef, check_alias, check_name, parse_ref
from regflow.registry.rows import (
    aliases_by_version,
    canonical_json,
    default_actor,
    version_from_row,
    version_row,
)
from regflow.registry.store import MANIFEST_FILE, sha256_bytes
from regflow.runtime.faults import kill_point
from regflow.schemas.model_card import CARD_FILE, WEIGHTS_FILE, DataInfo, ModelCard

MANIFEST_FORMAT = 1
_REGISTER_ATTEMPTS = 5


class VersionsMixin(RegistryBase):
    """`register` and `delete`."""

    def register(
        self,
        name: str,
        run_dir: Path | str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
        promote: AliasMove | None = None,
        recorded_run_dir: str | None = None,
        link_files: bool = False,
        hashed_files: Mapping[str, FileDigest] | None = None,
    ) -> ModelVersion:
        """Copy a finished run folder in as the next version of `name`.

        Files are copied and hashed into staging first (no lock held), then one write
        transaction allocates the number, renames the folder into place and inserts the row.
        The row is what makes a version visible, so a crash leaves either nothing visible or
        a complete version; a folder left without a row is an orphan `gc` removes.

        `promote` moves an alias to the new version in the same transaction: a version and
        its promotion commit together or not at all (AliasConflict when the alias moved).
        `recorded_run_dir` is the run folder lineage names, when `run_dir` is its staging
        copy that the caller renames into place after the commit. `link_files`: hard-link
        the files into the store where it shares a filesystem with `run_dir` (one copy on
        disk; the run folder's files become read-only), for a run folder nobody else writes;
        `hashed_files`: digests the caller took of files it wrote there, linked in without
        being read again while stat says they are unchanged (see FileStore.stage).
        """
        check_name(name)
        run_dir = Path(run_dir)
        _check_run_folder(run_dir)
        # Everything recorded below comes from the staged copy, so the index row describes
        # exactly the bytes stored, even if the run folder changes while we copy.
        staged = self.store.stage(
            run_dir, reserved={MANIFEST_FILE}, link=link_files, hashed=hashed_files
        )
        kill_point("register:staged")
        try:
            card = _parse_run(
                run_dir,
                self.store.read_staged(staged, CARD_FILE),
                self.store.read_staged(staged, WEIGHTS_FILE),
            )
        except BaseException:
            self.store.discard(staged)
            raise
        actor = actor or default_actor()
        tags = {str(k): str(v) for k, v in (tags or {}).items()}
        lineage = {
            "flow_run_id": card.flow_run_id,
            "flow_run_name": card.flow_run_name,
            "parameters": card.parameters,
            "git_commit": git_commit(),
            "run_dir": recorded_run_dir or str(run_dir.resolve()),
            "card_name": card.name,
            "fingerprint": card.fingerprint,
            "data": _data_lineage(card.data),
            "library_versions": card.library_versions,
        }
        record = {
            "run_id": card.flow_run_id,
            "data_sha256": card.data.sha256,
            "signature": card.signature.model_dump(mode="json"),
            "metrics": {k: v.model_dump(mode="json") for k, v in card.metrics.items()},
            "lineage": lineage,
        }
        # Round-trip through JSON so the index holds exactly what the manifest hashes.
        record = json.loads(canonical_json(record))

        published: tuple[str, int] | None = None
        try:
            for attempt in range(_REGISTER_ATTEMPTS):
                try:
                    with self._index.write() as conn:
                        now = utcnow()
                        _ensure_model(conn, name, description, tags, now)
                        version = _allocate_version(conn, name)
                        manifest = {
                            "format": MANIFEST_FORMAT,
                            "name": name,
                            "version": version,
                            "created_at": now,
                            "record": record,
                            "files": [
                                {"path": f.path, "sha256": f.sha256, "size": f.size}
                                for f in staged.files
                            ],
                        }
                        manifest_bytes = canonical_json(manifest)
                        self.store.write_staged(staged, MANIFEST_FILE, manifest_bytes)
                        published = (name, version)  # set first: publish may fail half way
                        location = self.store.publish(staged, name, version)
                        kill_point("register:published")
                        conn.execute(
                            insert(ix.model_versions).values(
                                name=name,
                                version=version,
                                status="ready",
                                created_at=now,
                                actor=actor,
                                description=description,
                                tags=tags,
                                run_id=record["run_id"],
                                data_sha256=record["data_sha256"],
                                signature=record["signature"],
                                metrics=record["metrics"],
                                lineage=record["lineage"],
                                manifest=manifest,
                                manifest_sha256=sha256_bytes(manifest_bytes),
                                files=location,
                            )
                        )
                        if promote is not None:
                            move_alias(
                                conn,
                                name,
                                check_alias(promote.alias),
                                promote.expected,
                                version,
                                actor,
                                promote.reason,
                                promote.metrics,
                                "set",
                            )
                    kill_point("register:committed")
                    break
                except sa_exc.IntegrityError:
                    # Another writer created the model row first (PostgreSQL); the whole
                    # transaction rolled back, so retry it from the start.
                    if published is not None or attempt == _REGISTER_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1))
        except BaseException:
            self.store.discard(staged)  # a no-op once it was renamed into place
            if published is not None:
                self._drop_unrecorded(*published)
            raise
        return self.resolve(ModelRef(name, version=version))

    def _drop_unrecorded(self, name: str, version: int) -> None:
        """Remove a published folder whose row did not commit (best effort; else gc does)."""
        try:
            with self._index.write() as conn:
                if version_row(conn, name, version) is None:
                    self.store.remove(name, version)
        except Exception:
            pass

    def delete(self, ref: str | ModelRef, *, actor: str | None = None) -> ModelVersion:
        """Delete one version (`name:version`); refused while any alias points at it.

        The row is marked deleted first (the version disappears), then its folder goes.
        The counter is untouched, so the number is never handed out again.
        """
        parsed = parse_ref(ref)
        if parsed.version is None:
            raise InvalidReferenceError(
                f"delete needs an exact version (name:version), got {str(parsed)!r}"
            )
        with self._index.write() as conn:
            mv = self._resolve(conn, parsed)
            version_row(conn, mv.name, mv.version, lock=True)
            held = aliases_by_version(conn, mv.name).get(mv.version, [])
            if held:
                names = ", ".join(f"{mv.name}@{a}" for a in held)
                raise AliasInUseError(
                    f"{mv.ref} is held by {names}; move or remove the alias first"
                )
            conn.execute(
                update(ix.model_versions)
                .where(
                    ix.model_versions.c.name == mv.name,
                    ix.model_versions.c.version == mv.version,
                    ix.model_versions.c.status == "ready",
                )
                .values(status="deleted", deleted_at=utcnow(), deleted_by=actor or default_actor())
            )
        with contextlib.suppress(OSError):  # left behind: verify reports it, gc removes it
            self.store.remove(mv.name, mv.version)
        with self._index.read() as conn:
            row = version_row(conn, mv.name, mv.version)
        assert row is not None  # rows are only ever marked deleted, never removed
        return version_from_row(row, [])


# -- the run folder ------------------------------------------------------------------------


def _data_lineage(data: DataInfo) -> dict[str, Any]:
    """The data a version was trained on; a multi-file dataset's files too."""
    lineage: dict[str, Any] = {"source": data.source, "sha256": data.sha256, "rows": data.rows}
    if data.files is not None:
        lineage["files"] = [f.model_dump(mode="json") for f in data.files]
    return lineage


def git_commit(cwd: Path | None = None) -> str | None:
    """HEAD of the git checkout at `cwd`, or None (not a checkout, no git, too slow)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) in (40, 64) else None


def _check_run_folder(run_dir: Path) -> None:
    source = str(run_dir)
    if not run_dir.is_dir():
        raise InvalidInputError.single(source, "run_folder", "is not a folder")
    for name in (CARD_FILE, WEIGHTS_FILE):
        if not (run_dir / name).is_file():
            raise InvalidInputError.single(source, "run_folder", f"{name} is missing")


def _parse_run(run_dir: Path, card_bytes: bytes, weights: bytes) -> ModelCard:
    """Validate the card and weights exactly as they were copied into staging."""
    card_path = run_dir / CARD_FILE
    weights_path = run_dir / WEIGHTS_FILE
    try:
        card = ModelCard.model_validate_json(card_bytes)
    except ValidationError as exc:
        raise InvalidInputError.single(
            str(card_path), "model_card", f"not a valid model card: {exc.errors()[0]['msg']}"
        ) from None
    try:
        coef = weights_from_bytes(weights).coef
    except Exception as exc:
        raise InvalidInputError.single(
            str(weights_path), "weights", f"cannot read safetensors weights: {exc}"
        ) from None
    if coef.shape != (len(card.signature.encoded_names),):
        raise InvalidInputError.single(
            str(weights_path),
            "weights",
            f"{coef.shape[0] if coef.ndim else 0} coefficients for "
            f"{len(card.signature.encoded_names)} features in the signature",
        )
    return card


# -- version numbers -----------------------------------------------------------------------


def _ensure_model(
    conn: Connection, name: str, description: str | None, tags: dict[str, str], now: str
) -> None:
    exists = conn.execute(
        select(ix.registered_models.c.name)
        .where(ix.registered_models.c.name == name)
        .with_for_update()
    ).first()
    if exists is None:
        conn.execute(
            insert(ix.registered_models).values(
                name=name, description=description, tags=tags, created_at=now
            )
        )
        conn.execute(insert(ix.version_counters).values(name=name, next_version=1))


def _allocate_version(conn: Connection, name: str) -> int:
    # UPDATE first: on PostgreSQL it row-locks the counter, serialising allocators; on
    # SQLite the transaction already holds the write lock (BEGIN IMMEDIATE).
    c = ix.version_counters.c
    conn.execute(
        update(ix.version_counters).where(c.name == name).values(next_version=c.next_version + 1)
    )
    allocated: int = conn.execute(select(c.next_version).where(c.name == name)).scalar_one() - 1
    # Defensive: never hand out a number a row already has, even if the counter was damaged.
    highest = conn.execute(
        select(func.max(ix.model_versions.c.version)).where(ix.model_versions.c.name == name)
    ).scalar()
    if highest is not None and allocated <= highest:
        allocated = highest + 1
        conn.execute(
            update(ix.version_counters).where(c.name == name).values(next_version=allocated + 1)
        )
    return allocated
