"""Integrity: recompute a version's hashes against its manifest and index row (`verify`),
find store folders no live row owns (`leftovers`), and remove them (`gc`).
"""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from regflow.errors import Problem
from regflow.registry import index as ix
from regflow.registry.errors import RegistryError
from regflow.registry.reading import RegistryBase
from regflow.registry.records import ModelVersion
from regflow.registry.references import ModelRef
from regflow.registry.rows import canonical_json, version_from_row, version_row
from regflow.registry.store import MANIFEST_FILE, FileEntry, in_threads, sha256_bytes

# The index columns a manifest's "record" repeats; the two must agree.
_RECORD_COLUMNS = ("run_id", "data_sha256", "signature", "metrics", "lineage")


class IntegrityMixin(RegistryBase):
    """`verify`, `leftovers`, `gc`, and the file checks loading relies on."""

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
            problems += self._check_files(version_from_row(row, []), keep=set())[0]
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
        # holding it, so we never mistake an in-flight version for an orphan (SQLite). A
        # read-only index has no lock to take, and `verify` only lists, so it reads.
        locked = remove or not self._index.read_only
        with self._index.write() if locked else self._index.read() as conn:
            # Plain tuples, to compare with the store's (name, version) pairs; Result.tuples()
            # is deprecated in SQLAlchemy 2.1.
            live = {
                (name, version)
                for name, version in conn.execute(
                    select(ix.model_versions.c.name, ix.model_versions.c.version).where(
                        ix.model_versions.c.status == "ready"
                    )
                )
            }
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
            row = version_row(conn, mv.name, mv.version)
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
        for column in _RECORD_COLUMNS:
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

        def examine(path: str) -> tuple[FileEntry, bytes] | OSError | RegistryError:
            try:
                if path in keep:
                    data = self.store.read_bytes(mv.name, mv.version, path)
                    return FileEntry(path, sha256_bytes(data), len(data)), data
                return self.store.hash_file(mv.name, mv.version, path), b""
            except (OSError, RegistryError) as exc:
                return exc

        there = [path for path in sorted(expected) if path in present]
        examined = dict(zip(there, in_threads(examine, there), strict=True))
        for path, entry in sorted(expected.items()):
            if path not in present:
                problems.append(problem("file_missing", f"{path} is missing", path))
                continue
            outcome = examined[path]
            if isinstance(outcome, OSError | RegistryError):
                problems.append(problem("file_unreadable", f"{path}: {outcome}", path))
                continue
            found, data = outcome
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
