"""Read one CSV or Parquet file into a frame, the way every regflow run reads data.

Shared by ingest (a single file, with progress and its fingerprint) and the dataset layer
(each partition of a multi-file dataset, possibly on a Dask worker), so that a file gives the
same frame, dtypes and error messages whichever way it is read. Every expected problem is an
InvalidInputError naming the file; a remote fault that may pass is a RemoteReadError.
"""

from __future__ import annotations

import io
from collections import Counter
from urllib.parse import urlparse

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from regflow.errors import InvalidInputError, Problem, RemoteReadError
from regflow.io.csv_pieces import read_csv_in_pieces
from regflow.io.sources import UTF8_BOM, csv_header

__all__ = [
    "PARSE_BY_PATH_MAX_BYTES",
    "check_parquet_schema",
    "check_url_scheme",
    "fetch_remote",
    "open_filesystem",
    "parse_bytes",
    "parse_csv",
    "parse_local",
    "parse_parquet",
    "remote_errors",
    "remote_failure",
]

# By path, pandas parses on every core (using half the CPU time the pieces take) but
# memory-maps the whole file (peak + 1x the file): files up to 256 MiB go that way,
# larger ones in pieces, or streamed where the pieces decline.
PARSE_BY_PATH_MAX_BYTES = 256 << 20


def _first_bad_utf8_line(stream: io.BufferedIOBase) -> tuple[int, str]:
    stream.seek(0)
    for number, raw in enumerate(stream, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return number, repr(raw[max(err.start - 10, 0) : err.end + 10])
    return 0, ""


def parse_csv(
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


def check_parquet_schema(source: str, schema: pa.Schema) -> None:
    """What the footer alone refuses: duplicate names (the read would fail with an Arrow
    riddle) and nested columns."""
    names = Counter(schema.names)
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
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
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


def parse_parquet(source: str, where: str | pa.NativeFile) -> pd.DataFrame:
    """A local path (memory-mapped: Arrow decodes on every core) or an Arrow buffer."""
    try:
        parquet = pq.ParquetFile(where, memory_map=isinstance(where, str))
        check_parquet_schema(source, parquet.schema_arrow)
        table = parquet.read()
    except (pa.ArrowInvalid, OSError) as err:
        raise InvalidInputError.single(source, "parquet_format", str(err)) from None
    # A block per column: consolidating them into one 2-D block copied the whole table.
    return table.to_pandas(split_blocks=True)


def parse_local(source: str, path: str, fmt: str, *, by_path: bool) -> pd.DataFrame:
    """A local file as a frame; `by_path`: let pandas map a CSV file (see the limit above)."""
    if fmt == "parquet":
        return parse_parquet(source, path)
    with open(path, "rb") as stream:
        return parse_csv(stream, source, path, by_path=by_path)


def parse_bytes(source: str, data: bytes, fmt: str) -> pd.DataFrame:
    """A file fetched whole (remote) as a frame."""
    if fmt == "parquet":
        return parse_parquet(source, pa.BufferReader(data))
    return parse_csv(io.BytesIO(data), source)


def _http_status(err: BaseException) -> int | None:
    seen: BaseException | None = err
    while seen is not None:
        status = getattr(seen, "status", None)
        if isinstance(status, int):
            return int(status)
        seen = seen.__cause__
    return None


def remote_failure(source: str, err: BaseException) -> InvalidInputError | RemoteReadError:
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


def remote_errors() -> tuple[type[BaseException], ...]:
    """The failures of a remote read. aiohttp (fsspec's HTTP client) loads here, not at
    import: about 0.5 s that a run on local files does not need."""
    import aiohttp

    return (OSError, TimeoutError, aiohttp.ClientError)


def check_url_scheme(source: str) -> None:
    """An unknown scheme, or one whose fsspec package is missing, is `url_scheme`."""
    protocol = urlparse(source).scheme
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as err:
        raise InvalidInputError.single(
            source, "url_scheme", f"cannot read '{protocol}://' URLs: {err}"
        ) from None


def open_filesystem(source: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of a URL and the path it gives that filesystem."""
    check_url_scheme(source)
    try:
        filesystem, path = fsspec.core.url_to_fs(source)
    except remote_errors() as err:
        raise remote_failure(source, err) from None
    return filesystem, path


def fetch_remote(source: str) -> bytes:
    """The whole file at a URL (remote files are fetched whole, hashed, then parsed)."""
    check_url_scheme(source)
    try:
        with fsspec.open(source, "rb") as remote:
            data: bytes = remote.read()
    except remote_errors() as err:
        raise remote_failure(source, err) from None
    return data
