"""Write a whole file from memory straight to the disk, bypassing the page cache (O_DIRECT),
durable when the call returns.

The dask engine's workers write a run's predictions (gigabytes at 100M rows) and the run then
syncs them to disk. Through the page cache every byte is first copied into newly allocated
cache pages: at 100M rows that copy was ~3.5 CPU-seconds of the workers' kernel time, on two
cores that had nothing to spare, and the parts pushed the dataset itself out of the cache.
Written with O_DIRECT the disk reads them from the process's own buffer.

No library offers this (Python's `os` is the interface): O_DIRECT wants the buffer's address,
the length and the offset aligned to the device's block size, so the bytes go through a
page-aligned buffer kept per thread (fresh pages each file cost as much as the copy saved),
the last block is padded and the file truncated to its real length. Where the platform or the
filesystem refuses (no O_DIRECT on macOS; EINVAL elsewhere), the file is written and fsynced
through the cache as usual.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from pathlib import Path

ALIGN = 4096  # a multiple of every common logical block size (512, 4096)
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_FILE_MODE = 0o666  # what open() uses; the umask applies


class _Buffers(threading.local):
    aligned: mmap.mmap | None = None


_BUFFERS = _Buffers()


def write_through(data: bytes | memoryview, path: str | Path, *, direct: bool = True) -> bool:
    """`data` as the whole new content of `path`, on disk (fsynced) when this returns; whether
    it went past the page cache. `direct=False` writes through the cache (what a refusing
    filesystem gets, and a file under one block, which the cache serves best)."""
    if direct and _O_DIRECT and len(data) >= ALIGN:
        try:
            _write_direct(data, path)
            return True
        except OSError as err:
            if err.errno != errno.EINVAL:  # EINVAL: this filesystem or device will not
                raise
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return False


def _write_direct(data: bytes | memoryview, path: str | Path) -> None:
    size = len(data)
    padded = -(-size // ALIGN) * ALIGN
    buffer = _aligned(padded)
    buffer[:size] = data
    buffer[size:padded] = bytes(padded - size)  # no bytes of an earlier file, even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_DIRECT, _FILE_MODE)
    try:
        with memoryview(buffer) as view:
            done = 0
            while done < padded:
                done += os.pwrite(fd, view[done:padded], done)
        os.ftruncate(fd, size)
        os.fsync(fd)  # the data is on the device; this makes its size and blocks durable
    finally:
        os.close(fd)


def _aligned(size: int) -> mmap.mmap:
    """This thread's page-aligned buffer of at least `size` bytes (anonymous maps are)."""
    current = _BUFFERS.aligned
    if current is None or len(current) < size:
        if current is not None:
            current.close()
        current = _BUFFERS.aligned = mmap.mmap(-1, size)
    return current
