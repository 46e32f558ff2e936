"""Parse a large local CSV file on every core, in pieces cut at line ends.

pandas (3.1+) parses a CSV file given by path on several threads, but it memory-maps the whole
file, so the file's size joins the peak memory; through a file object it parses on one thread
and holds every chunk until it concatenates them (twice the frame at the peak). Here the file
is cut into 16 MiB pieces at line ends. A first pass counts each piece's lines (an upper bound
on its rows), which places every piece in arrays allocated once; then each worker reads one
piece, parses it with the same C parser and copies it into place. The peak is about the
finished frame plus the pieces in flight.

Anything the pieces cannot reproduce exactly returns None, and the caller parses serially:
quote characters in the data (a quoted field may hold a line end), dtypes the pieces cannot
agree on, non-numeric columns, an inferred index, and every parse error (the serial parser's
message has the right line numbers).
"""

from __future__ import annotations

import io
import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from regflow.runtime.cores import usable_cores

__all__ = ["PIECE_BYTES", "read_csv_in_pieces"]

PIECE_BYTES = 16 << 20
_MAX_WORKERS = 4
_INT, _FLOAT = np.dtype(np.int64), np.dtype(np.float64)


class _Decline(Exception):
    """This file needs the serial parser."""


def _offsets(path: str, start: int, size: int) -> list[int]:
    """Piece boundaries: every PIECE_BYTES from start, moved to just after the next line end."""
    cuts = [start]
    with open(path, "rb") as fh:
        target = start + PIECE_BYTES
        while target < size:
            fh.seek(target)
            fh.readline()
            position = fh.tell()
            if position >= size:
                break
            cuts.append(position)
            target = position + PIECE_BYTES
    cuts.append(size)
    return cuts


def _parse_piece(path: str, start: int, stop: int, names: list[str]) -> pd.DataFrame:
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(stop - start)
    if b'"' in data:
        raise _Decline("quote characters")
    try:
        frame = pd.read_csv(io.BytesIO(data), header=None, names=names, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise _Decline(str(err)) from None
    if not isinstance(frame.index, pd.RangeIndex) or list(frame.columns) != names:
        raise _Decline("an inferred index")
    if len(frame):
        for name, dtype in frame.dtypes.items():
            if not (isinstance(dtype, np.dtype) and dtype.kind in "biuf"):
                raise _Decline(f"column {name!r} is {dtype}")
    return frame


class _Output:
    """Column arrays the pieces are appended to, in file order."""

    def __init__(self, first: pd.DataFrame, capacity: int) -> None:
        # np.empty commits pages only as they are written, so spare capacity costs nothing.
        self.columns = {
            str(name): np.empty(capacity, dtype=dtype) for name, dtype in first.dtypes.items()
        }
        self.rows = 0

    def append(self, frame: pd.DataFrame) -> None:
        end = self.rows + len(frame)
        for name in self.columns:
            values = frame[name].to_numpy()
            target = self.columns[name]
            if end > target.shape[0]:  # the first piece's row length misled the estimate
                target = self._resize(name, max(end, target.shape[0] * 3 // 2))
            if values.dtype != target.dtype:
                target = self._widen(name, values.dtype)
            target[self.rows : end] = values
        self.rows = end

    def _resize(self, name: str, capacity: int) -> np.ndarray:
        grown = np.empty(capacity, dtype=self.columns[name].dtype)
        grown[: self.rows] = self.columns[name][: self.rows]
        self.columns[name] = grown
        return grown

    def _widen(self, name: str, dtype: np.dtype) -> np.ndarray:
        """Integers in some pieces, decimals or NaN in others: float64, as pandas would."""
        current = self.columns[name].dtype
        if {current, dtype} != {_INT, _FLOAT}:
            raise _Decline(f"column {name!r} is {current} in one piece and {dtype} in another")
        if current == _INT:
            self.columns[name] = self.columns[name].astype(_FLOAT)
        return self.columns[name]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {name: values[: self.rows] for name, values in self.columns.items()}, copy=False
        )


def read_csv_in_pieces(path: str, *, workers: int | None = None) -> pd.DataFrame | None:
    """The frame pd.read_csv(path) would return, parsed on several threads; or None."""
    size = os.path.getsize(path)
    if workers is None:
        workers = min(_MAX_WORKERS, usable_cores())
    if workers < 2 or size < 2 * PIECE_BYTES:
        return None
    with open(path, "rb") as fh:
        header = fh.readline()
        start = fh.tell()
    if header.count(b'"') % 2:
        return None  # a quoted name runs on past the line end
    try:
        # utf-8-sig: the names lack a leading byte-order mark, as the serial parser's do.
        names = [
            str(name)
            for name in pd.read_csv(io.BytesIO(header), nrows=0, encoding="utf-8-sig").columns
        ]
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return None
    cuts = _offsets(path, start, size)
    output: _Output | None = None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parsed = pool.map(
            lambda piece: _parse_piece(path, piece[0], piece[1], names), itertools.pairwise(cuts)
        )
        try:
            # In file order, as the workers finish: each piece is freed once appended.
            for frame in parsed:
                if output is None:
                    # Twice the rows the first piece's line length predicts.
                    estimate = len(frame) * (size - start) // max(cuts[1] - start, 1)
                    output = _Output(frame, 2 * estimate + 1024)
                output.append(frame)
                del frame
        except _Decline:
            pool.shutdown(wait=True, cancel_futures=True)
            return None
    return None if output is None else output.frame()
