"""Version files on any fsspec filesystem: `s3://bucket/prefix`, `gs://`, `az://`, `memory://`.

The same layout and guarantees as the local folder (store.py): files are uploaded and hashed
under `.staging/<key>/`, and `publish` copies them to `<name>/<version>/` while the caller
holds the index's write lock, before the index row commits. Object stores have no atomic
rename, so a crash during or after the copy leaves objects under `<name>/<version>/` with no
row: readers never see them (they find versions through the index), `verify` lists them as
an orphan and `gc` removes them. Loading verifies every file's SHA-256 as it does locally.

fsspec (already a Prefect dependency) is the library here; this module only maps the
registry's store protocol onto it. The protocols' own packages (s3fs, gcsfs, adlfs) are
installed by the user for the scheme they use; a missing one is a clear error.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regflow.io.hashing import FileDigest
from regflow.registry.errors import InvalidReferenceError, RegistryError, RegistryReadOnlyError
from regflow.registry.store import (
    _CHUNK,
    _STAGING,
    FileEntry,
    Staged,
    _safe_relative,
    _walk,
)

# The package that implements each common scheme, for the message when it is missing.
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}
_PACKAGES.update({"abfs": "adlfs", "abfss": "adlfs"})


def open_filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and root path (no trailing slash) that `url` names."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except ImportError as err:
        scheme = url.split("://", 1)[0]
        package = _PACKAGES.get(scheme, f"the fsspec implementation for {scheme}://")
        raise InvalidReferenceError(
            f"registry store {url}: {package} is not installed ({err}); pip install {package}"
        ) from None
    except (ValueError, KeyError) as err:
        raise InvalidReferenceError(f"registry store {url}: {err}") from None
    return fs, str(root).rstrip("/")


class FsspecStore:
    """Version folders under an fsspec URL; publication copies, then the index row commits."""

    def __init__(
        self, url: str, *, create: bool = True, read_only: bool = False, registry: str = ""
    ):
        self.fs, self.root = open_filesystem(url)
        self.location = url.rstrip("/")
        self.read_only = read_only
        self._registry = registry or self.location
        if create and not read_only:
            self.fs.makedirs(self._path(_STAGING), exist_ok=True)

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _version(self, name: str, version: int) -> str:
        return self._path(name, str(version))

    def _file(self, name: str, version: int, path: str) -> str:
        return self._path(name, str(version), *_safe_relative(path).parts)

    def _staged(self, key: str, path: str = "") -> str:
        rel = _safe_relative(path).parts if path else ()
        return self._path(_STAGING, *_safe_relative(key).parts, *rel)

    def _hash_remote(self, remote: str, rel: str) -> FileEntry:
        digest, size = hashlib.sha256(), 0
        with self.fs.open(remote, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return FileEntry(path=rel, sha256=digest.hexdigest(), size=size)

    def _fresh(self) -> Any:
        """The filesystem with its listings cache dropped: other processes write the store
        too, and a stale listing could hide a version or an orphan."""
        self.fs.invalidate_cache()
        return self.fs

    def _refuse_writes(self) -> None:
        if self.read_only:
            raise RegistryReadOnlyError(self._registry, "register a version")

    # -- staging -------------------------------------------------------------------------

    def stage(
        self,
        source: Path,
        *,
        reserved: set[str],
        link: bool = False,
        hashed: Mapping[str, FileDigest] | None = None,
    ) -> Staged:
        """Upload every regular file under `source` to a new staging key, hashing the bytes
        sent. `link` has no meaning across filesystems: files are always uploaded, and so
        hashed as they are sent (`hashed` would save nothing)."""
        self._refuse_writes()
        key = f"{int(time.time())}-{uuid.uuid4().hex}"
        entries: list[FileEntry] = []
        try:
            for src in sorted(_walk(source)):
                rel = src.relative_to(source).as_posix()
                if rel in reserved:
                    raise RegistryError(f"{source}: the run folder may not contain {rel!r}")
                digest, size = hashlib.sha256(), 0
                with open(src, "rb") as fin, self.fs.open(self._staged(key, rel), "wb") as out:
                    while chunk := fin.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                entries.append(FileEntry(path=rel, sha256=digest.hexdigest(), size=size))
        except BaseException:
            self.remove_staging(key)
            raise
        return Staged(key=key, files=tuple(entries))

    def read_staged(self, staged: Staged, path: str) -> bytes:
        data: bytes = self.fs.cat_file(self._staged(staged.key, path))
        return data

    def write_staged(self, staged: Staged, path: str, data: bytes) -> None:
        self.fs.pipe_file(self._staged(staged.key, path), data)

    def publish(self, staged: Staged, name: str, version: int) -> str:
        """Copy the staged files to `<name>/<version>/`, then drop the staging key.

        The caller holds the index's write lock and has checked that no row owns this
        version, so objects already there are an orphan of a crashed registration: removed.
        """
        target = self._version(name, version)
        if self._fresh().exists(target):
            self.fs.rm(target, recursive=True)
        source = self._staged(staged.key).rstrip("/") + "/"
        for staged_file in sorted(str(p) for p in self.fs.find(source)):
            rel = staged_file.removeprefix(source)
            self.fs.copy(staged_file, self._file(name, version, rel))
        self.remove_staging(staged.key)
        return f"{name}/{version}"

    def discard(self, staged: Staged) -> None:
        self.remove_staging(staged.key)

    def list_staging(self) -> list[tuple[str, float]]:
        """Staging keys and their age: a key starts with the epoch second it was made
        (object stores have no folder times)."""
        base = self._path(_STAGING)
        if not self._fresh().exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            key = str(entry).rstrip("/").rsplit("/", 1)[-1]
            stamp = key.split("-", 1)[0]
            found.append((key, float(stamp) if stamp.isdigit() else 0.0))
        return found

    def remove_staging(self, key: str) -> None:
        target = self._staged(key)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    # -- versions ------------------------------------------------------------------------

    def exists(self, name: str, version: int) -> bool:
        return bool(self._fresh().exists(self._version(name, version)))

    def list_files(self, name: str, version: int) -> list[str]:
        base = self._version(name, version)
        if not self._fresh().exists(base):
            return []
        prefix = base.rstrip("/") + "/"
        found = [str(p) for p in self.fs.find(base)]
        return sorted(p.removeprefix(prefix) for p in found if p.startswith(prefix))

    def read_bytes(self, name: str, version: int, path: str) -> bytes:
        data: bytes = self.fs.cat_file(self._file(name, version, path))
        return data

    def hash_file(self, name: str, version: int, path: str) -> FileEntry:
        return self._hash_remote(self._file(name, version, path), path)

    def remove(self, name: str, version: int) -> None:
        target = self._version(name, version)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def list_versions(self) -> list[tuple[str, int]]:
        if not self._fresh().exists(self.root):
            return []
        found = []
        for model_dir in self.fs.ls(self.root, detail=False):
            model = str(model_dir).rstrip("/").rsplit("/", 1)[-1]
            if model.startswith(".") or not self.fs.isdir(model_dir):
                continue
            for version_dir in self.fs.ls(model_dir, detail=False):
                number = str(version_dir).rstrip("/").rsplit("/", 1)[-1]
                if number.isascii() and number.isdigit():
                    found.append((model, int(number)))
        return sorted(found)
