"""SHA-256 of local files: the datasets' fingerprints and the registry's manifests.

`settled_digest` takes a file's SHA-256 ahead of its use (the dask engine's early cluster
hashes a dataset while the CLI loads the pipeline) together with the file's stat identity
(device, inode, size, modification and change times in ns), which `FileDigest.holds` checks
when the digest is used, as git and make trust a file that stat says is unchanged. The
kernel stamps those times from a clock that ticks every few milliseconds, so a file changed
within a tick of its hashing could keep its stamps: only files last changed SETTLED_S or
more before the hash began get a digest; anything written later moves their stamps.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

HASH_BLOCK = 8 << 20
SETTLED_S = 2.0  # a file changed this recently may still be being written
AHEAD_NICENESS = 10  # hashing ahead yields the core to the process it runs beside


@dataclass(frozen=True)
class FileDigest:
    """A local file's SHA-256 and size, and the stat identity it was taken under."""

    sha256: str
    size: int
    identity: tuple[int, ...]

    def holds(self, path: str) -> bool:
        """Whether the file at `path` is still the one hashed (stat says it is unchanged)."""
        try:
            return _identity(os.stat(path)) == self.identity
        except OSError:
            return False

    def same_inode(self, path: str) -> bool:
        """Whether `path` is the hashed file (perhaps by another name) and unchanged but for
        its change time, which a new hard link or a chmod moves."""
        try:
            return _identity(os.stat(path))[:-1] == self.identity[:-1]
        except OSError:
            return False


def written_digest(data: bytes | memoryview, path: str) -> FileDigest:
    """The digest of `data`, which this process has just written to `path` and closed, under
    the stat identity the file has now. Only for files in a folder nobody else writes (a run's
    own staging folder): a write by another within a tick of the clock could keep the stamps,
    which is why settled_digest waits for files it did not write."""
    sha256 = hashlib.sha256(data).hexdigest()
    return FileDigest(sha256, len(data), _identity(os.stat(path)))


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def settled_digest(path: str) -> FileDigest | None:
    """The file's digest where it can be trusted later by its stat identity alone: it was
    last changed SETTLED_S or more ago and did not change while hashed. None otherwise (or
    where it cannot be read: whoever reads it next names the problem)."""
    try:
        before = os.stat(path)
        if max(before.st_mtime, before.st_ctime) > time.time() - SETTLED_S:
            return None
        sha256, size = sha256_file(path)
        if size != before.st_size or _identity(os.stat(path)) != _identity(before):
            return None
    except (OSError, ValueError):
        return None
    return FileDigest(sha256, size, _identity(before))


def settled_digest_yielding(path: str) -> FileDigest | None:
    """settled_digest on a thread of lower priority (Linux: niceness is per thread), so the
    hashing only takes a core nobody else wants."""
    found: list[FileDigest | None] = [None]

    def run() -> None:
        if sys.platform == "linux":
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), AHEAD_NICENESS)
        found[0] = settled_digest(path)

    thread = threading.Thread(target=run, name="regflow-hash-ahead")
    thread.start()
    thread.join()
    return found[0]


def sha256_file(path: str, report: Callable[[int], None] | None = None) -> tuple[str, int]:
    """(hex SHA-256, size) of a local file; `report` gets the bytes hashed so far.

    Hashed in place from a memory map (copying each block out of the page cache first was a
    tenth of the time); streamed where a file cannot be mapped (empty, a pipe)."""
    try:
        return _sha256_mapped(path, report)
    except (OSError, ValueError):
        pass
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
            if report is not None:
                report(size)
    return digest.hexdigest(), size


def _sha256_mapped(path: str, report: Callable[[int], None] | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    with (
        open(path, "rb") as fh,
        mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        memoryview(mapped) as view,
    ):
        size = len(view)
        for start in range(0, size, HASH_BLOCK):
            digest.update(view[start : start + HASH_BLOCK])
            if report is not None:
                report(min(size, start + HASH_BLOCK))
    return digest.hexdigest(), size
