"""Ingest: read a CSV or Parquet dataset from a local path or an fsspec URL, with its SHA-256."""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from regflow.errors import InvalidInputError, Problem, RemoteReadError
from regflow.io.csv_pieces import read_csv_in_pieces
from regflow.io.sources import (
    UTF8_BOM,
    check_local_file,
    csv_header,
    detect_format,
    is_remote,
)
from regflow.io.text import human_size
from regflow.runtime import progress
from regflow.schemas.frames import LoadedData
from regflow.tasks.outcomes import pipeline_task

CHUNK = 8 << 20
PARSE_BY_PATH_MAX_BYTES = 256 << 20


def _sha256_file(path: str, total: int = 0) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            size += len(block)
            # Bytes hashed stand for bytes read: the parse, on the other core, is one call.
            progress.update("ingest", size, f"{human_size(size)} of {human_size(total)}")
    return digest.hexdigest(), size


def _first_bad_utf8_line(stream: io.BufferedIOBase) -> tuple[int, str]:
    stream.seek(0)
    for number, raw in enumerate(stream, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return number, repr(raw[max(err.start - 10, 0) : err.end + 10])
    return 0, ""


def _parse_csv(
    stream: io.BufferedIOBase, source: str, path: str | None = None, *, by_path: bool = False
) -> pd.DataFrame:
    """Parse after the checks pandas would get wrong; `path`: the same file, local."""
    # Without its byte-order mark: "\ufeffx" would differ from "x" and hide a duplicate name,
    # and a file holding only the mark is empty.
    first = stream.read(64 << 10).removeprefix(UTF8_BOM)
    if not first.strip():
        raise InvalidInputError.single(source, "not_empty", "the file is empty")
    names = csv_header(first)
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise InvalidInputError(
            source,
            [
                Problem(
                    check="unique_column_names",
                    message="the header names this column more than once",
                    file=source,
                    column=name,
                )
                for name in dupes
            ],
        )
    if path is not None and not by_path:
        # On every core with about one frame of memory; None leaves the file (quotes, text,
        # parse errors) to the serial parser.
        frame = read_csv_in_pieces(path)
        if frame is not None:
            return frame
    stream.seek(0)
    try:
        # By path pandas parses on every core but maps the whole file into memory; the
        # same C parser, errors and result either way.
        # utf-8-sig: a byte-order mark is never part of the first column's name.
        return pd.read_csv(path if by_path and path else stream, encoding="utf-8-sig")
    except UnicodeDecodeError:
        line, sample = _first_bad_utf8_line(stream)
        raise InvalidInputError.single(
            source, "utf8", f"bytes that are not UTF-8 on line {line}: {sample}"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        message = str(err).strip().splitlines()[0]
        raise InvalidInputError.single(source, "csv_syntax", message) from None


def _parse_parquet(source: str, where: str | pa.NativeFile) -> pd.DataFrame:
    """A local path (memory-mapped: Arrow decodes on every core) or an Arrow buffer."""
    try:
        parquet = pq.ParquetFile(where, memory_map=isinstance(where, str))
        # The footer first: duplicate names make the read fail with an Arrow riddle.
        names = Counter(parquet.schema_arrow.names)
        if any(count > 1 for count in names.values()):
            raise InvalidInputError(
                source,
                [
                    Problem(
                        check="unique_column_names",
                        message="the file has more than one column with this name",
                        file=source,
                        column=name,
                    )
                    for name, count in names.items()
                    if count > 1
                ],
            )
        table = parquet.read()
    except (pa.ArrowInvalid, OSError) as err:
        raise InvalidInputError.single(source, "parquet_format", str(err)) from None
    nested = [f.name for f in table.schema if pa.types.is_nested(f.type)]
    if nested:
        raise InvalidInputError(
            source,
            [
                Problem(
                    check="flat_columns",
                    message="nested (list/struct/map) column: flatten it to numeric columns",
                    file=source,
                    column=name,
                )
                for name in nested
            ],
        )
    return table.to_pandas()


def _read_local(source: str) -> LoadedData:
    path, fmt = check_local_file(source)
    # By path, pandas parses on every core (using half the CPU time the pieces take) but
    # memory-maps the whole file (peak + 1x the file): files up to 256 MiB go that way,
    # larger ones in pieces, or streamed where the pieces decline.
    total = os.path.getsize(path)
    by_path = total <= PARSE_BY_PATH_MAX_BYTES
    progress.start("ingest", f"ingest {Path(path).name}", total)
    # Hash on the second core while the first one parses.
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(_sha256_file, path, total)
        if fmt == "parquet":
            frame = _parse_parquet(source, path)
        else:
            with open(path, "rb") as stream:
                frame = _parse_csv(stream, source, path, by_path=by_path)
        sha256, size = hashing.result()
    progress.finish("ingest", f"{len(frame):,} rows, {human_size(size)}")
    return LoadedData(frame, source, fmt, sha256, size)


def _http_status(err: BaseException) -> int | None:
    seen: BaseException | None = err
    while seen is not None:
        status = getattr(seen, "status", None)
        if isinstance(status, int):
            return int(status)
        seen = seen.__cause__
    return None


def _remote_failure(source: str, err: BaseException) -> InvalidInputError | RemoteReadError:
    """Bad input (absent, forbidden) fails at once; anything that may pass is retried.

    fsspec's HTTP raises FileNotFoundError for any failed lookup, a 503 included; the
    server's status is on the exception's cause.
    """
    status = _http_status(err)
    # No cause: the backend itself said "not found" (a refused connection is a cause).
    missing = isinstance(err, FileNotFoundError) and err.__cause__ is None
    if status in (404, 410) or missing:
        return InvalidInputError.single(source, "file_exists", "no such file at this URL")
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return InvalidInputError.single(
            source, "remote_access", f"the server refused the request (HTTP {status})"
        )
    cause = err.__cause__ or err
    return RemoteReadError(
        source, f"HTTP {status}" if status is not None else f"{type(cause).__name__}: {cause}"
    )


def _read_remote(source: str, fmt: str) -> LoadedData:
    # Remote files are fetched whole, hashed, then parsed from memory. aiohttp (fsspec's HTTP
    # client) loads here, not at import: about 0.5 s that a local file's run does not need.
    import aiohttp

    protocol = urlparse(source).scheme
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as err:  # unknown scheme, or its package is missing
        raise InvalidInputError.single(
            source, "url_scheme", f"cannot read '{protocol}://' URLs: {err}"
        ) from None
    progress.start("ingest", f"ingest {source}")
    try:
        with fsspec.open(source, "rb") as remote:
            data = remote.read()
    except (OSError, TimeoutError, aiohttp.ClientError) as err:
        raise _remote_failure(source, err) from None
    if fmt == "parquet":
        frame = _parse_parquet(source, pa.BufferReader(data))
    else:
        frame = _parse_csv(io.BytesIO(data), source)
    progress.finish("ingest", f"{len(frame):,} rows, {human_size(len(data))}")
    return LoadedData(frame, source, fmt, hashlib.sha256(data).hexdigest(), len(data))


def read_table(source: str, name: str | None = None) -> LoadedData:
    """Read a dataset; every expected problem becomes an InvalidInputError naming the file,
    or `name` when given (in-memory data reaches here as a temporary file: call it by its
    name, not by a path that is gone after the run)."""
    try:
        if is_remote(source):
            loaded = _read_remote(source, detect_format(source))
        else:
            loaded = _read_local(source)
    except InvalidInputError as err:
        if name is None:
            raise
        raise err.renamed(name) from None
    return loaded if name is None else replace(loaded, source=name)


ingest_task = pipeline_task(read_table, name="ingest", retries=3, delays=[1, 2, 4])
