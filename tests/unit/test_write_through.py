"""regflow.io.write_through: a file written past the page cache (O_DIRECT, padded to the
block size and truncated back) holds exactly the bytes given, whatever their length, as the
buffered fallback does; the thread's reused buffer leaks nothing of an earlier file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from regflow.io.write_through import ALIGN, write_through

SIZES = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, 3 * ALIGN + 17, 3_000_001]


def _takes_o_direct(folder: Path) -> bool:
    try:
        fd = os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    except (AttributeError, OSError):  # no O_DIRECT (macOS) or a filesystem without it
        return False
    os.close(fd)
    return True


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
@pytest.mark.parametrize("size", SIZES)
def test_the_file_holds_exactly_the_bytes_given(size: int, direct: bool, tmp_path: Path) -> None:
    data = os.urandom(size)
    target = tmp_path / "part.bin"
    went_direct = write_through(memoryview(data), target, direct=direct)
    assert target.read_bytes() == data
    # Past the cache wherever the filesystem takes O_DIRECT and there is a block to write.
    assert went_direct == (direct and size >= ALIGN and _takes_o_direct(tmp_path))


def test_a_shorter_file_after_a_longer_one_keeps_nothing_of_it(tmp_path: Path) -> None:
    long, short = b"\xff" * (5 * ALIGN + 3), b"\x01" * (ALIGN + 5)
    write_through(long, tmp_path / "long.bin")
    write_through(short, tmp_path / "short.bin")  # the same thread's buffer, reused
    write_through(short, tmp_path / "long.bin")  # and over the longer file
    assert (tmp_path / "short.bin").read_bytes() == short
    assert (tmp_path / "long.bin").read_bytes() == short


def test_threads_write_side_by_side(tmp_path: Path) -> None:
    payloads = {i: os.urandom(ALIGN * (i + 2) + i) for i in range(6)}

    def write(i: int) -> None:
        for _ in range(3):
            write_through(payloads[i], tmp_path / f"{i}.bin")

    threads = [threading.Thread(target=write, args=(i,)) for i in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all((tmp_path / f"{i}.bin").read_bytes() == data for i, data in payloads.items())


def test_the_mode_is_what_open_gives(tmp_path: Path) -> None:
    (tmp_path / "plain.bin").write_bytes(b"x")
    write_through(os.urandom(2 * ALIGN), tmp_path / "direct.bin")
    modes = {stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in ("plain.bin", "direct.bin")}
    assert len(modes) == 1


def test_a_folder_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_through(os.urandom(2 * ALIGN), tmp_path / "missing" / "part.bin")
