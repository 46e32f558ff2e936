"""The model registry: immutable versions, aliases moved by compare-and-set, verified loading."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from regflow.errors import InvalidInputError, Problem
from regflow.io.model_files import weights_from_bytes
from regflow.registry import index as ix
from regflow.registry.errors import (
    AliasConflict,
    AliasInUseError,
    IntegrityError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
)
from regflow.registry.index import Index, utcnow
from regflow.registry.predictor import Predictor
from regflow.registry.records import AliasEvent, ModelVersion, RegisteredModel
from regflow.registry.references import ModelRef, check_alias, check_name, parse_ref
from regflow.registry.store import (
    MANIFEST_FILE,
    FileEntry,
    FileStore,
    LocalDirectoryStore,
    sha256_bytes,
)
from regflow.runtime.faults import kill_point
from regflow.schemas.model_card import CARD_FILE, WEIGHTS_FILE, ModelCard

ENV_VAR = "REGFLOW_REGISTRY"
ENV_STORE = "REGFLOW_REGISTRY_STORE"
DEFAULT_LOCATION = "artifacts/registry"
MANIFEST_FORMAT = 1
_REGISTER_ATTEMPTS = 5


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""`set_alias(expected=UNSET)`: move from whatever holds the alias now (still atomic)."""


def canonical_json(value: Any) -> bytes:
    """The one byte form of a manifest, so its hash is reproducible from the index row."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def default_actor() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "user:unknown"


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


class Registry:
    """Index (SQL via SQLAlchemy Core) + file store. Safe to use from many processes."""

    def __init__(self, index: Index, store: FileStore, location: str):
        self._index = index
        self.store = store
        self.location = location

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        uri: str | os.PathLike[str] | None = None,
        *,
        store: str | None = None,
        create: bool = True,
    ) -> Registry:
        """Open the registry at `uri`, creating it unless `create=False`.

        `uri` None -> $REGFLOW_REGISTRY -> `artifacts/registry`. A directory path holds
        `index.db` (SQLite) and `store/`. A database URL (`sqlite:///x.db`,
        `postgresql://...`) names the index; the files then go to `store`, or
        $REGFLOW_REGISTRY_STORE, or (SQLite only) `store/` beside the database file.
        With `create=False` a missing SQLite registry is a NotFoundError (a typo in
        `--registry` should not silently create an empty registry).
        """
        text = os.fspath(uri) if uri is not None else os.environ.get(ENV_VAR) or DEFAULT_LOCATION
        if "://" in text and not text.startswith("file://"):
            try:
                url = make_url(text)
            except sa_exc.ArgumentError as exc:
                raise InvalidReferenceError(f"cannot parse registry URL {text!r}: {exc}") from None
            store_path = store or os.environ.get(ENV_STORE)
            if store_path is None:
                if url.get_backend_name() != "sqlite" or not url.database:
                    raise InvalidReferenceError(
                        f"registry index {url.render_as_string(hide_password=True)} needs a "
                        f"file store: pass store=... or set {ENV_STORE}"
                    )
                store_path = str(Path(url.database).resolve().parent / "store")
            if url.get_backend_name() == "sqlite" and url.database:
                db = Path(url.database).resolve()
                if not create and not db.exists():
                    raise NotFoundError(f"no registry index at {db}")
                db.parent.mkdir(parents=True, exist_ok=True)
            location = url.render_as_string(hide_password=True)
            index_url = text
        else:
            root = Path(text.removeprefix("file://")).expanduser().resolve()
            if root.exists() and not root.is_dir():
                raise InvalidReferenceError(f"registry location {root} is a file, not a folder")
            if not create and not (root / "index.db").exists():
                raise NotFoundError(
                    f"no registry at {root} (no index.db): register a model first, or pass "
                    f"--registry / set {ENV_VAR}"
                )
            root.mkdir(parents=True, exist_ok=True)
            store_path = store or str(root / "store")
            location = str(root)
            index_url = f"sqlite:///{root / 'index.db'}"
        return cls(Index(index_url), LocalDirectoryStore(Path(store_path)), location)

    def close(self) -> None:
        self._index.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    # -- reading ---------------------------------------------------------------------------

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
            held = self._aliases_by_version(conn, name)
            return [_version(r, held.get(r.version, [])) for r in rows]

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names now: `name:version`, `name@alias`, `name` (latest)."""
        parsed = parse_ref(ref)
        with self._index.read() as conn:
            return self._resolve(conn, parsed)

    def get_alias(self, name: str, alias: str) -> int | None:
        with self._index.read() as conn:
            return _alias_version(conn, check_name(name), check_alias(alias))

    def aliases(self, name: str) -> dict[str, int]:
        with self._index.read() as conn:
            return _aliases(conn, check_name(name))

    def history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """The alias audit log of a model, oldest first."""
        with self._index.read() as conn:
            self._model(conn, check_name(name))
            q = select(ix.alias_events).where(ix.alias_events.c.name == name)
            if alias is not None:
                q = q.where(ix.alias_events.c.alias == check_alias(alias))
            return [_event(r) for r in conn.execute(q.order_by(ix.alias_events.c.id))]

    # -- registering -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        run_dir: Path | str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Copy a finished run folder in as the next version of `name`.

        Files are copied and hashed into staging first (no lock held), then one write
        transaction allocates the number, renames the folder into place and inserts the row.
        The row is what makes a version visible, so a crash leaves either nothing visible or
        a complete version; a folder left without a row is an orphan `gc` removes.
        """
        check_name(name)
        run_dir = Path(run_dir)
        _check_run_folder(run_dir)
        # Everything recorded below comes from the staged copy, so the index row describes
        # exactly the bytes stored, even if the run folder changes while we copy.
        staged = self.store.stage(run_dir, reserved={MANIFEST_FILE})
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
            "run_dir": str(run_dir.resolve()),
            "card_name": card.name,
            "data": {
                "source": card.data.source,
                "sha256": card.data.sha256,
                "rows": card.data.rows,
            },
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
                if _version_row(conn, name, version) is None:
                    self.store.remove(name, version)
        except Exception:
            pass

    # -- aliases ---------------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        expected: int | None = UNSET,
        actor: str | None = None,
        reason: str | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> AliasEvent:
        """Point `name@alias` at `version` if it still points at `expected`, and log it.

        `expected=None` means the alias must not exist yet; an int means it must hold that
        version; UNSET (default) takes the current holder inside the same transaction.
        Raises AliasConflict when the alias moved meanwhile.
        """
        check_name(name)
        check_alias(alias)
        with self._index.write() as conn:
            row = _version_row(conn, name, version, lock=True)
            if row is None or row.status != "ready":
                self._model(conn, name)
                state = "was deleted" if row is not None else "does not exist"
                raise NotFoundError(f"{name}:{version} {state}; cannot point {alias!r} at it")
            current = _alias_version(conn, name, alias)
            if expected is UNSET:
                expected = current
            return self._move_alias(
                conn, name, alias, expected, version, actor, reason, metrics, "set"
            )

    def remove_alias(
        self,
        name: str,
        alias: str,
        *,
        expected: int | None = UNSET,
        actor: str | None = None,
        reason: str | None = None,
    ) -> AliasEvent:
        check_name(name)
        check_alias(alias)
        with self._index.write() as conn:
            current = _alias_version(conn, name, alias)
            if current is None:
                raise NotFoundError(f"{name}@{alias} is not set")
            if expected is UNSET:
                expected = current
            return self._move_alias(
                conn, name, alias, expected, None, actor, reason, None, "remove"
            )

    def promote(
        self,
        ref: str | ModelRef,
        alias: str = "champion",
        *,
        reason: str | None = None,
        actor: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        expected: int | None = UNSET,
    ) -> AliasEvent:
        """Point `alias` at the version `ref` names; the event records its stored metrics."""
        target = self.resolve(ref)
        return self.set_alias(
            target.name,
            alias,
            target.version,
            expected=expected,
            actor=actor,
            reason=reason or f"promoted {target.ref} to {alias}",
            metrics=metrics if metrics is not None else target.metrics,
        )

    def rollback(
        self,
        name: str,
        alias: str = "champion",
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> AliasEvent:
        """Move `alias` back to the version that held it before its current holder.

        The audit log is replayed as a stack (a set pushes, a rollback pops), so repeated
        rollbacks walk further back instead of flipping between two versions. Holders that
        were deleted since are skipped.
        """
        check_name(name)
        check_alias(alias)
        with self._index.write() as conn:
            self._model(conn, name)
            current = _alias_version(conn, name, alias)
            if current is None:
                raise NotFoundError(f"{name}@{alias} is not set; nothing to roll back")
            events = conn.execute(
                select(ix.alias_events)
                .where(ix.alias_events.c.name == name, ix.alias_events.c.alias == alias)
                .order_by(ix.alias_events.c.id)
            ).all()
            stack = _holder_stack(events)
            previous: int | None = None
            while len(stack) > 1:
                stack.pop()
                candidate = _version_row(conn, name, stack[-1])
                if candidate is not None and candidate.status == "ready":
                    previous = stack[-1]
                    break
            if previous is None:
                raise RegistryError(
                    f"{name}@{alias} (version {current}) has no earlier holder to roll back to"
                )
            row = _version_row(conn, name, previous, lock=True)
            return self._move_alias(
                conn,
                name,
                alias,
                current,
                previous,
                actor,
                reason or f"rollback of {alias} from version {current} to {previous}",
                row.metrics if row is not None else None,
                "rollback",
            )

    def _move_alias(
        self,
        conn: Connection,
        name: str,
        alias: str,
        expected: int | None,
        version: int | None,
        actor: str | None,
        reason: str | None,
        metrics: Mapping[str, Any] | None,
        action: str,
    ) -> AliasEvent:
        now = utcnow()
        a = ix.aliases.c
        if expected is None:
            if version is None:
                raise ValueError("removing an alias needs the expected current version")
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(ix.aliases).values(
                            name=name, alias=alias, version=version, updated_at=now
                        )
                    )
            except sa_exc.IntegrityError:
                raise AliasConflict(name, alias, None, _alias_version(conn, name, alias)) from None
        else:
            where = (a.name == name, a.alias == alias, a.version == expected)
            if version is None:
                done = conn.execute(delete(ix.aliases).where(*where))
            else:
                done = conn.execute(
                    update(ix.aliases).where(*where).values(version=version, updated_at=now)
                )
            if done.rowcount != 1:
                raise AliasConflict(name, alias, expected, _alias_version(conn, name, alias))
        result = conn.execute(
            insert(ix.alias_events)
            .values(
                time=now,
                name=name,
                alias=alias,
                action=action,
                from_version=expected,
                to_version=version,
                actor=actor or default_actor(),
                reason=reason,
                metrics=json.loads(canonical_json(dict(metrics))) if metrics else None,
            )
            .returning(ix.alias_events)
        )
        return _event(result.one())

    # -- loading and checking --------------------------------------------------------------

    def load(self, ref: str | ModelRef) -> Predictor:
        """A predictor for `ref`, after every file matched the manifest and the manifest
        matched the index. Raises IntegrityError naming the file otherwise."""
        mv = self.resolve(ref)
        problems, contents = self._check_files(mv, keep={CARD_FILE, WEIGHTS_FILE})
        if problems:
            raise IntegrityError(mv.ref, problems)
        try:
            card = ModelCard.model_validate_json(contents[CARD_FILE])
            weights = weights_from_bytes(contents[WEIGHTS_FILE])
            return Predictor(
                name=mv.name,
                version=mv.version,
                requested_ref=str(parse_ref(ref)),
                signature=mv.signature,
                weights=weights,
                card=card,
                manifest_sha256=mv.manifest_sha256,
            )
        except (ValidationError, ValueError, KeyError) as exc:
            raise RegistryError(f"{mv.ref}: stored model cannot be used: {exc}") from None

    def card(self, ref: str | ModelRef) -> ModelCard:
        """The verified model card of a version."""
        mv = self.resolve(ref)
        problems, contents = self._check_files(mv, keep={CARD_FILE})
        if problems:
            raise IntegrityError(mv.ref, problems)
        return ModelCard.model_validate_json(contents[CARD_FILE])

    def export_joblib(self, ref: str | ModelRef, out: Path | str) -> Path:
        """Write a torch-free predictor for `ref` with joblib (see regflow.portable)."""
        from regflow.registry.export import export_joblib

        return export_joblib(self.load(ref), Path(out))

    def verify(self, ref: str | ModelRef | None = None) -> list[Problem]:
        """Recompute every hash of one version, or of the whole registry.

        Reports missing, changed and extra files, a manifest or index row that does not
        match the other, and index rows without folders. Folders left by an interrupted
        registration are not versions (no row makes them visible): `leftovers` lists them.
        """
        if ref is not None:
            mv = self.resolve(ref)
            return self._check_files(mv, keep=set())[0]
        problems: list[Problem] = []
        with self._index.read() as conn:
            rows = conn.execute(
                select(ix.model_versions)
                .where(ix.model_versions.c.status == "ready")
                .order_by(ix.model_versions.c.name, ix.model_versions.c.version)
            ).all()
        for row in rows:
            problems += self._check_files(_version(row, []), keep=set())[0]
        return problems

    def leftovers(self) -> list[Problem]:
        """Store folders without a live index row (an interrupted registration or delete).

        Invisible to every reader, so the registry stays consistent; `gc` removes them.
        """
        return [
            Problem(
                check="orphan_folder",
                message=f"{n}/{v}: folder in the store without a live index row "
                "(an interrupted registration or delete); `gc` removes it",
                file=f"{n}/{v}",
            )
            for n, v in self._orphans()
        ]

    def gc(self, *, staging_older_than_s: float = 3600.0) -> list[str]:
        """Remove orphan version folders and stale staging folders; returns what went."""
        removed = []
        for name, version in self._orphans(remove=True):
            removed.append(f"{name}/{version}")
        cutoff = time.time() - staging_older_than_s
        for key, mtime in self.store.list_staging():
            if mtime < cutoff:
                self.store.remove_staging(key)
                removed.append(f".staging/{key}")
        return removed

    def _orphans(self, *, remove: bool = False) -> list[tuple[str, int]]:
        # Under the write lock: a registration renames its folder and commits its row while
        # holding it, so we never mistake an in-flight version for an orphan (SQLite).
        with self._index.write() as conn:
            live = set(
                conn.execute(
                    select(ix.model_versions.c.name, ix.model_versions.c.version).where(
                        ix.model_versions.c.status == "ready"
                    )
                ).tuples()
            )
            orphans = [nv for nv in self.store.list_versions() if nv not in live]
            if remove:
                for name, version in orphans:
                    self.store.remove(name, version)
        return orphans

    def _check_files(
        self, mv: ModelVersion, *, keep: set[str]
    ) -> tuple[list[Problem], dict[str, bytes]]:
        """Problems with one version's files; the bytes of the files named in `keep`."""
        where = f"{mv.name}/{mv.version}"

        def problem(check: str, message: str, path: str | None = None) -> Problem:
            file = f"{where}/{path}" if path else where
            return Problem(check=check, message=f"{mv.ref}: {message}", file=file)

        with self._index.read() as conn:
            row = _version_row(conn, mv.name, mv.version)
        if row is None:
            return [problem("index_row_missing", "no index row")], {}
        problems: list[Problem] = []
        # 1. the index row agrees with itself: its manifest hashes to manifest_sha256
        row_manifest_bytes = canonical_json(row.manifest)
        if sha256_bytes(row_manifest_bytes) != row.manifest_sha256:
            problems.append(
                problem(
                    "index_row_changed",
                    "the index row's manifest does not hash to its manifest_sha256 "
                    "(the index was edited)",
                )
            )
        if not self.store.exists(mv.name, mv.version):
            problems.append(problem("folder_missing", "version folder is missing from the store"))
            return problems, {}
        # 2. the stored manifest is the one the index recorded
        try:
            stored = self.store.read_bytes(mv.name, mv.version, MANIFEST_FILE)
        except FileNotFoundError:
            problems.append(problem("file_missing", f"{MANIFEST_FILE} is missing", MANIFEST_FILE))
            return problems, {}
        except (OSError, RegistryError) as exc:
            problems.append(problem("file_unreadable", f"{MANIFEST_FILE}: {exc}", MANIFEST_FILE))
            return problems, {}
        if sha256_bytes(stored) != row.manifest_sha256:
            problems.append(
                problem(
                    "manifest_changed",
                    f"{MANIFEST_FILE} does not match the SHA-256 recorded in the index",
                    MANIFEST_FILE,
                )
            )
            return problems, {}
        manifest = json.loads(stored)
        # 3. the row's descriptive columns are the ones the manifest recorded
        record = manifest.get("record", {})
        for column in ("run_id", "data_sha256", "signature", "metrics", "lineage"):
            # compare canonical bytes: NaN metrics must compare equal to themselves
            if canonical_json(record.get(column)) != canonical_json(getattr(row, column)):
                problems.append(
                    problem(
                        "index_row_changed", f"index column {column!r} differs from the manifest"
                    )
                )
        if (manifest.get("name"), manifest.get("version")) != (mv.name, mv.version):
            problems.append(problem("manifest_changed", "manifest names another model or version"))
        # 4. every file: present, same size and SHA-256; nothing extra
        expected = {f["path"]: FileEntry(**f) for f in manifest.get("files", [])}
        present = set(self.store.list_files(mv.name, mv.version)) - {MANIFEST_FILE}
        contents: dict[str, bytes] = {}
        for path, entry in sorted(expected.items()):
            if path not in present:
                problems.append(problem("file_missing", f"{path} is missing", path))
                continue
            try:
                if path in keep:
                    data = self.store.read_bytes(mv.name, mv.version, path)
                    found = FileEntry(path, sha256_bytes(data), len(data))
                else:
                    data = b""
                    found = self.store.hash_file(mv.name, mv.version, path)
            except (OSError, RegistryError) as exc:
                problems.append(problem("file_unreadable", f"{path}: {exc}", path))
                continue
            if found.size != entry.size:
                problems.append(
                    problem(
                        "file_changed",
                        f"{path}: size {found.size} bytes, manifest says {entry.size}",
                        path,
                    )
                )
            elif found.sha256 != entry.sha256:
                problems.append(
                    problem(
                        "file_changed",
                        f"{path}: SHA-256 {found.sha256[:12]}… differs from the manifest's "
                        f"{entry.sha256[:12]}…",
                        path,
                    )
                )
            elif path in keep:
                contents[path] = data
        for path in sorted(present - set(expected)):
            problems.append(problem("file_extra", f"{path} is not in the manifest", path))
        return problems, contents

    # -- deleting --------------------------------------------------------------------------

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
            _version_row(conn, mv.name, mv.version, lock=True)
            held = self._aliases_by_version(conn, mv.name).get(mv.version, [])
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
            return _version(_version_row(conn, mv.name, mv.version), [])

    # -- helpers ---------------------------------------------------------------------------

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        row = conn.execute(
            select(ix.registered_models).where(ix.registered_models.c.name == name)
        ).first()
        if row is None:
            known = conn.execute(
                select(ix.registered_models.c.name).order_by(ix.registered_models.c.name)
            ).scalars()
            listed = ", ".join(known) or "none"
            raise NotFoundError(
                f"no model named {name!r} in registry {self.location} (models: {listed})"
            )
        stats = conn.execute(
            select(func.max(ix.model_versions.c.version), func.count()).where(
                ix.model_versions.c.name == name, ix.model_versions.c.status == "ready"
            )
        ).one()
        return RegisteredModel(
            name=row.name,
            description=row.description,
            tags=row.tags or {},
            created_at=row.created_at,
            latest_version=stats[0],
            versions=stats[1],
            aliases=_aliases(conn, name),
        )

    def _resolve(self, conn: Connection, ref: ModelRef) -> ModelVersion:
        self._model(conn, ref.name)
        if ref.alias is not None:
            version = _alias_version(conn, ref.name, ref.alias)
            if version is None:
                held = _aliases(conn, ref.name)
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
        row = _version_row(conn, ref.name, version)
        if row is None:
            raise NotFoundError(f"{ref.name}:{version} does not exist")
        if row.status != "ready":
            raise NotFoundError(f"{ref.name}:{version} was deleted at {row.deleted_at}")
        return _version(row, self._aliases_by_version(conn, ref.name).get(version, []))

    @staticmethod
    def _aliases_by_version(conn: Connection, name: str) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for alias, version in _aliases(conn, name).items():
            out.setdefault(version, []).append(alias)
        return out


# -- module helpers ------------------------------------------------------------------------


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
    if coef.shape != (len(card.signature.features),):
        raise InvalidInputError.single(
            str(weights_path),
            "weights",
            f"{coef.shape[0] if coef.ndim else 0} coefficients for "
            f"{len(card.signature.features)} features in the signature",
        )
    return card


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
    allocated = conn.execute(select(c.next_version).where(c.name == name)).scalar_one() - 1
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


def _version_row(conn: Connection, name: str, version: int, *, lock: bool = False) -> Row | None:
    q = select(ix.model_versions).where(
        ix.model_versions.c.name == name, ix.model_versions.c.version == version
    )
    return conn.execute(q.with_for_update() if lock else q).first()


def _alias_version(conn: Connection, name: str, alias: str) -> int | None:
    return conn.execute(
        select(ix.aliases.c.version).where(ix.aliases.c.name == name, ix.aliases.c.alias == alias)
    ).scalar()


def _aliases(conn: Connection, name: str) -> dict[str, int]:
    rows = conn.execute(
        select(ix.aliases.c.alias, ix.aliases.c.version)
        .where(ix.aliases.c.name == name)
        .order_by(ix.aliases.c.alias)
    ).tuples()
    return {alias: version for alias, version in rows}


def _holder_stack(events: list[Row]) -> list[int]:
    stack: list[int] = []
    for e in events:
        if e.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != e.to_version:  # keep the stack in step with the log
                stack.append(e.to_version)
        elif e.action == "remove":
            stack = []
        elif not stack or stack[-1] != e.to_version:
            stack.append(e.to_version)
    return stack


def _version(row: Row, aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        status=row.status,
        created_at=row.created_at,
        deleted_at=row.deleted_at,
        deleted_by=row.deleted_by,
        actor=row.actor,
        description=row.description,
        tags=row.tags or {},
        run_id=row.run_id,
        data_sha256=row.data_sha256,
        signature=row.signature,
        metrics=row.metrics,
        lineage=row.lineage,
        manifest_sha256=row.manifest_sha256,
        files=row.files,
        aliases=sorted(aliases),
    )


def _event(row: Row) -> AliasEvent:
    return AliasEvent(
        id=row.id,
        time=row.time,
        name=row.name,
        alias=row.alias,
        action=row.action,
        from_version=row.from_version,
        to_version=row.to_version,
        actor=row.actor,
        reason=row.reason,
        metrics=row.metrics,
    )
