"""Where version files live: a small interface and a local-directory implementation.

A store holds immutable version folders `<name>/<version>/` plus a private staging area.
Registration copies files into staging, then `publish` moves the folder into place with one
atomic rename; readers only ever see complete folders. An fsspec store can implement the same
protocol later (publish via a marker object instead of a rename).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, TypeVar

from regflow.io.hashing import FileDigest, sha256_file
from regflow.io.write_through import write_through
from regflow.registry.errors import RegistryError, RegistryReadOnlyError
from regflow.runtime.cores import usable_cores

MANIFEST_FILE = "manifest.json"
_STAGING = ".staging"
_CHUNK = 1 << 20
_J = TypeVar("_J")
_R = TypeVar("_R")


@dataclass(frozen=True)
class FileEntry:
    """One stored file: its path inside the version folder (POSIX), SHA-256 and size."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Staged:
    """A staging folder being prepared for publication."""

    key: str
    files: tuple[FileEntry, ...]


class FileStore(Protocol):
    """What the registry needs from a file store."""

    location: str

    def stage(
        self,
        source: Path,
        *,
        reserved: set[str],
        link: bool = False,
        hashed: Mapping[str, FileDigest] | None = None,
    ) -> Staged: ...
    def write_staged(self, staged: Staged, path: str, data: bytes) -> None: ...
    def read_staged(self, staged: Staged, path: str) -> bytes: ...
    def publish(self, staged: Staged, name: str, version: int) -> str: ...
    def discard(self, staged: Staged) -> None: ...
    def exists(self, name: str, version: int) -> bool: ...
    def list_files(self, name: str, version: int) -> list[str]: ...
    def read_bytes(self, name: str, version: int, path: str) -> bytes: ...
    def hash_file(self, name: str, version: int, path: str) -> FileEntry: ...
    def remove(self, name: str, version: int) -> None: ...
    def list_versions(self) -> list[tuple[str, int]]: ...
    def list_staging(self) -> list[tuple[str, float]]: ...
    def remove_staging(self, key: str) -> None: ...


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory holding it is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe_relative(path: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if rel.is_absolute() or not rel.parts or any(p in ("", ".", "..") for p in rel.parts):
        raise RegistryError(f"unsafe file path in registry: {path!r}")
    return rel


class LocalDirectoryStore:
    """Version folders under a local directory; publication is an atomic `rename`."""

    def __init__(
        self,
        root: Path,
        *,
        create: bool = True,
        read_only: bool = False,
        registry: str | None = None,
    ):
        """`create`: make the staging folder now (readers must not write at open time).

        `read_only`: `stage` refuses, so a registration fails before it copies anything;
        `registry` names the registry in that message.
        """
        self.root = Path(root).resolve()
        self.location = str(self.root)
        self.read_only = read_only
        self._registry = registry or self.location
        if create and not read_only:
            (self.root / _STAGING).mkdir(parents=True, exist_ok=True)

    def _version_dir(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def _file(self, name: str, version: int, path: str) -> Path:
        return self._version_dir(name, version).joinpath(*_safe_relative(path).parts)

    # -- staging -------------------------------------------------------------------------

    def stage(
        self,
        source: Path,
        *,
        reserved: set[str],
        link: bool = False,
        hashed: Mapping[str, FileDigest] | None = None,
    ) -> Staged:
        """Copy every regular file under `source` into a new staging folder, hashing as we go.

        `link`: hard-link instead of copying where `source` is on the same filesystem, so a
        run folder and its version share one copy of each file (both become read-only, as
        versions are immutable); elsewhere the file is copied. Only for folders the caller
        owns and no longer changes (the training flow's staged run folder). `hashed`: digests
        the caller took of files it wrote there (by path relative to `source`); a file linked
        while stat says it is still the one hashed takes its digest instead of being read.
        Symlinks are refused: a version must hold its own bytes, not point elsewhere.
        """
        if self.read_only:
            raise RegistryReadOnlyError(self._registry, "register a version")
        key = f"{int(time.time())}-{uuid.uuid4().hex}"
        dest_root = self.root / _STAGING / key
        dest_root.mkdir(parents=True)
        jobs: list[tuple[Path, Path, str]] = []
        try:
            for src in sorted(_walk(source)):
                rel = src.relative_to(source).as_posix()
                if rel in reserved:
                    raise RegistryError(f"{source}: the run folder may not contain {rel!r}")
                dest = dest_root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                jobs.append((src, dest, rel))
            known = hashed or {}
            entries = in_threads(
                lambda job: _stage_file(*job, link=link, known=known.get(job[2])), jobs
            )
            for directory in sorted({p.parent for p in dest_root.rglob("*")}, reverse=True):
                _fsync_dir(directory)
        except BaseException:
            shutil.rmtree(dest_root, ignore_errors=True)
            raise
        return Staged(key=key, files=tuple(entries))

    def read_staged(self, staged: Staged, path: str) -> bytes:
        return (self.root / _STAGING / staged.key / _safe_relative(path)).read_bytes()

    def write_staged(self, staged: Staged, path: str, data: bytes) -> None:
        target = self.root / _STAGING / staged.key / _safe_relative(path)
        target.unlink(missing_ok=True)  # a retried transaction writes it again
        write_through(data, target, direct=False)  # a small file: the cache serves it best
        os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        _fsync_dir(target.parent)

    def publish(self, staged: Staged, name: str, version: int) -> str:
        """Move the staging folder to `<name>/<version>` in one rename.

        The caller holds the index's write lock and has checked that no index row owns this
        version, so a folder already there is an orphan from a crashed registration: set aside.
        """
        target = self._version_dir(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            self._set_aside(target)
        os.rename(self.root / _STAGING / staged.key, target)
        _fsync_dir(target.parent)
        _fsync_dir(self.root / _STAGING)
        return f"{name}/{version}"

    def discard(self, staged: Staged) -> None:
        self.remove_staging(staged.key)

    def list_staging(self) -> list[tuple[str, float]]:
        base = self.root / _STAGING
        return [(p.name, p.stat().st_mtime) for p in base.iterdir()] if base.exists() else []

    def remove_staging(self, key: str) -> None:
        _rmtree(self.root / _STAGING / _safe_relative(key))

    # -- versions ------------------------------------------------------------------------

    def exists(self, name: str, version: int) -> bool:
        return self._version_dir(name, version).is_dir()

    def list_files(self, name: str, version: int) -> list[str]:
        base = self._version_dir(name, version)
        out = []
        for p in base.rglob("*"):
            if p.is_symlink() or not p.is_dir():
                out.append(p.relative_to(base).as_posix())
        return sorted(out)

    def read_bytes(self, name: str, version: int, path: str) -> bytes:
        file = self._file(name, version, path)
        if file.is_symlink():
            raise RegistryError(f"{name}/{version}/{path} is a symlink; refusing to follow it")
        return file.read_bytes()

    def hash_file(self, name: str, version: int, path: str) -> FileEntry:
        file = self._file(name, version, path)
        if file.is_symlink():
            raise RegistryError(f"{name}/{version}/{path} is a symlink; refusing to follow it")
        return _hash_file(file, path)

    def remove(self, name: str, version: int) -> None:
        target = self._version_dir(name, version)
        if target.exists():
            # Rename first so the version disappears at once, then delete at leisure.
            _rmtree(self._set_aside(target))

    def list_versions(self) -> list[tuple[str, int]]:
        found = []
        for model_dir in self.root.iterdir():
            if model_dir.name.startswith(".") or not model_dir.is_dir():
                continue
            for vdir in model_dir.iterdir():
                if vdir.is_dir() and vdir.name.isascii() and vdir.name.isdigit():
                    found.append((model_dir.name, int(vdir.name)))
        return sorted(found)

    def _set_aside(self, target: Path) -> Path:
        aside = self.root / _STAGING / f"{int(time.time())}-removed-{uuid.uuid4().hex}"
        os.rename(target, aside)
        _fsync_dir(target.parent)
        return aside


def _walk(source: Path) -> Iterator[Path]:
    for path in source.rglob("*"):
        if path.is_symlink():
            raise RegistryError(f"{path}: symlinks cannot be registered; copy the file instead")
        if path.is_file():
            yield path
        elif not path.is_dir():
            raise RegistryError(f"{path}: not a regular file")


def in_threads(work: Callable[[_J], _R], jobs: list[_J]) -> list[_R]:
    """work(job) for every job, in order, a thread per core: hashlib and file I/O release the
    GIL, and a run of many parts (a partitioned dataset's predictions, gigabytes) hashed
    one after another took seconds of the register step, and of every check of a version."""
    if len(jobs) <= 1:
        return [work(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(len(jobs), usable_cores())) as pool:
        return list(pool.map(work, jobs))


def _stage_file(
    src: Path, dest: Path, rel: str, *, link: bool, known: FileDigest | None
) -> FileEntry:
    linked = _link_hashed(src, dest, rel, known) if link else None
    return linked or _copy_hashed(src, dest, rel)


def _link_hashed(src: Path, dest: Path, rel: str, known: FileDigest | None) -> FileEntry | None:
    """Hard-link `src` as `dest` and hash it (or take `known`, where stat says the file is
    still the one it describes); None where a link cannot be made (then copy)."""
    holds = known is not None and known.holds(str(src))
    try:
        os.link(src, dest)
    except OSError:  # another filesystem (EXDEV), or one without hard links
        return None
    os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # versions are immutable
    if known is not None and holds and known.same_inode(str(dest)):
        return FileEntry(path=rel, sha256=known.sha256, size=known.size)
    return _hash_file(dest, rel)


def _hash_file(file: Path, rel: str) -> FileEntry:
    sha256, size = sha256_file(str(file))
    return FileEntry(path=rel, sha256=sha256, size=size)


def _copy_hashed(src: Path, dest: Path, rel: str) -> FileEntry:
    digest = hashlib.sha256()
    size = 0
    # Hash the bytes as written, so the manifest describes exactly what the store holds.
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # versions are immutable
    return FileEntry(path=rel, sha256=digest.hexdigest(), size=size)


def _rmtree(path: Path) -> None:
    # Files are read-only but their folders are not, so a plain rmtree removes them on POSIX.
    if path.exists():
        shutil.rmtree(path)
