"""Multi-file datasets: describe each file, check they share one schema, fingerprint them
together, and read one partition exactly as a single-file run reads its file.

Every per-file function here is a plain module-level function of a path string that returns
small picklable values (or one partition's frame), so a Dask cluster can map it over the
files; nothing here knows about Dask. Which files a dataset names is regflow.io.dataset_files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from regflow.errors import InvalidInputError, Problem
from regflow.io.dataset_files import dataset_format, dataset_label, expand_dataset, is_multi_file
from regflow.io.hashing import sha256_file
from regflow.io.sources import check_local_file, detect_format, is_remote
from regflow.io.table_reading import (
    PARSE_BY_PATH_MAX_BYTES,
    check_parquet_schema,
    fetch_remote,
    parse_bytes,
    parse_local,
)
from regflow.schemas.columns import numbers_as_text
from regflow.schemas.frames import DatasetFile, LoadedData

__all__ = [
    "DatasetFile",
    "check_same_schema",
    "dataset_label",
    "dataset_sha256",
    "describe_file",
    "expand_dataset",
    "is_multi_file",
    "load_partition",
    "outline_file",
    "read_dataset",
    "read_float_columns",
    "read_partition",
]

UNHASHED = ""  # outline_file's sha256 for a file whose bytes are hashed when first read


def _columns(frame: pd.DataFrame) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(c) for c in frame.columns), tuple(str(t) for t in frame.dtypes)


def _parquet_footer(
    source: str, where: str | pa.NativeFile
) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Rows, columns and dtypes from the footer alone. The dtypes are those of an empty
    frame of the file's schema: what `to_pandas` makes of each column (an integer column
    with missing values reads as float64, which check_same_schema treats as compatible)."""
    try:
        with pq.ParquetFile(where) as parquet:
            schema = parquet.schema_arrow
            check_parquet_schema(source, schema)
            rows = parquet.metadata.num_rows
        columns, dtypes = _columns(schema.empty_table().to_pandas())
    except (pa.ArrowInvalid, OSError) as err:
        raise InvalidInputError.single(source, "parquet_format", str(err)) from None
    return rows, columns, dtypes


def _describe(
    path: str, fmt: str, sha256: str, size: int, frame: pd.DataFrame, footer: str | pa.NativeFile
) -> DatasetFile:
    """Parquet from its footer (`footer`: where to read it); CSV from its parsed frame."""
    if fmt == "parquet":
        rows, columns, dtypes = _parquet_footer(path, footer)
    else:
        rows, (columns, dtypes) = len(frame), _columns(frame)
        return DatasetFile(path, size, sha256, rows, columns, dtypes, _numeric_text(frame))
    return DatasetFile(path, size, sha256, rows, columns, dtypes)


def _numeric_text(frame: pd.DataFrame) -> tuple[str, ...]:
    """Text columns of a CSV file whose values are mostly numbers (the rule by which a single
    file's text column is still a feature): a stray "twelve" makes a numeric column text in
    that file alone, and validation, not the schema check, should name its rows."""
    return tuple(str(name) for name in frame.columns if numbers_as_text(frame[name]))


def _load(path: str, *, with_parquet_data: bool) -> tuple[DatasetFile, pd.DataFrame]:
    """One file hashed, described and parsed: a CSV file always (its dtypes are what parsing
    gives), a Parquet file only `with_parquet_data` (else its frame is empty)."""
    empty = pd.DataFrame()
    if is_remote(path):
        fmt = detect_format(path)
        data = fetch_remote(path)
        sha256 = hashlib.sha256(data).hexdigest()
        wanted = with_parquet_data or fmt == "csv"
        frame = parse_bytes(path, data, fmt) if wanted else empty
        info = _describe(path, fmt, sha256, len(data), frame, pa.BufferReader(data))
        return info, frame
    local, fmt = check_local_file(path)
    wanted = with_parquet_data or fmt == "csv"
    by_path = os.path.getsize(local) <= PARSE_BY_PATH_MAX_BYTES
    # Hash on a second core while the first one parses (as ingest does).
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(sha256_file, local)
        frame = parse_local(path, local, fmt, by_path=by_path) if wanted else empty
        sha256, size = hashing.result()
    return _describe(path, fmt, sha256, size, frame, local), frame


def describe_file(path: str) -> DatasetFile:
    """One file's size, SHA-256 (streamed over its bytes), rows, columns and dtypes.

    Parquet: from the footer, without reading the data. CSV: parsed as ingest parses it, so
    its dtypes mean what they mean in a single-file run. A missing, unreadable or corrupt
    file is InvalidInputError (exit 2) naming it, with ingest's checks (`file_exists`,
    `parquet_format`, `csv_syntax`, ...).
    """
    return _load(path, with_parquet_data=False)[0]


def outline_file(path: str) -> DatasetFile:
    """describe_file without the hash where the hash needs a read of its own: a local
    Parquet file's rows, columns and dtypes come from its footer, and its sha256 is UNHASHED
    (load_partition hashes it when the data is read anyway). CSV files (whose row count
    needs a parse) and remote files (fetched whole either way) are described in full."""
    if is_remote(path):
        return describe_file(path)
    local, fmt = check_local_file(path)
    if fmt != "parquet":
        return describe_file(path)
    rows, columns, dtypes = _parquet_footer(path, local)
    return DatasetFile(path, os.path.getsize(local), UNHASHED, rows, columns, dtypes)


def load_partition(path: str) -> tuple[DatasetFile, pd.DataFrame]:
    """describe_file and read_partition in one pass over the file (one read, one hash)."""
    return _load(path, with_parquet_data=True)


def read_partition(path: str) -> pd.DataFrame:
    """One file as a frame, read exactly as ingest reads a single file (same parser,
    dtypes and error messages, naming this file)."""
    if is_remote(path):
        return parse_bytes(path, fetch_remote(path), detect_format(path))
    local, fmt = check_local_file(path)
    by_path = os.path.getsize(local) <= PARSE_BY_PATH_MAX_BYTES
    return parse_local(path, local, fmt, by_path=by_path)


def _is_plain_number(kind: pa.DataType) -> bool:
    """Arrow types whose cast to float64 is what pandas and numpy make of them."""
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_float32(kind)
        or pa.types.is_float64(kind)
        or pa.types.is_boolean(kind)
    )


def read_float_columns(path: str, names: Sequence[str]) -> list[np.ndarray] | None:
    """Only these columns of a local Parquet file, as float64 arrays (nulls as NaN), read
    straight from Arrow: the values `pd.to_numeric(read_partition(path)[name])` gives, without
    decoding the other columns or building a frame. None where that shortcut does not apply
    (CSV, remote, a column of another type, a file that fails to read): use read_partition,
    which also names the problem."""
    if is_remote(path):
        return None
    try:
        local, fmt = check_local_file(path)
        if fmt != "parquet":
            return None
        # ParquetFile.read, not read_table: the dataset layer took a third of the time.
        table = pq.ParquetFile(local, memory_map=True).read(columns=list(names))
    except (InvalidInputError, pa.ArrowInvalid, OSError, KeyError, IndexError):
        return None
    if table.schema.names != list(names):
        return None  # a name missing from, or repeated in, the file
    columns = [table.column(name) for name in names]
    if not all(_is_plain_number(column.type) for column in columns):
        return None
    return [_float64(column) for column in columns]


def _float64(column: pa.ChunkedArray) -> np.ndarray:
    """A column as float64 numpy (nulls as NaN): Arrow's own buffer where it already is one."""
    if column.num_chunks == 1 and column.null_count == 0 and pa.types.is_float64(column.type):
        return column.chunk(0).to_numpy(zero_copy_only=True)
    values = pc.cast(column, pa.float64(), safe=False).to_numpy()
    return np.ascontiguousarray(values, dtype=np.float64)


def _kind(dtype: str) -> str:
    """Which dtypes may meet in one column: int and float are both `number` (an integer
    column with a missing value reads as float64); str and object are both `text`."""
    try:
        parsed = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return dtype
    if pd.api.types.is_bool_dtype(parsed):
        return "boolean"
    if pd.api.types.is_numeric_dtype(parsed):
        return "number"
    if pd.api.types.is_object_dtype(parsed) or pd.api.types.is_string_dtype(parsed):
        return "text"
    return dtype


def _schema_problems(first: DatasetFile, other: DatasetFile) -> list[Problem]:
    def problem(column: str, message: str) -> Problem:
        return Problem(check="same_schema", message=message, file=other.path, column=column)

    theirs = dict(zip(other.columns, other.dtypes, strict=True))
    ours = dict(zip(first.columns, first.dtypes, strict=True))

    def kind(file: DatasetFile, column: str, dtype: str) -> str:
        return "number" if column in file.numeric_text else _kind(dtype)

    problems = [
        problem(c, f"missing from this file, but in '{first.path}'")
        for c in ours
        if c not in theirs
    ]
    problems += [
        problem(c, f"in this file, but not in '{first.path}'") for c in theirs if c not in ours
    ]
    problems += [
        problem(
            c,
            f"{theirs[c]} ({_kind(theirs[c])}) here, but {dtype} ({_kind(dtype)}) in "
            f"'{first.path}'",
        )
        for c, dtype in ours.items()
        if c in theirs and kind(other, c, theirs[c]) != kind(first, c, dtype)
    ]
    return problems


def check_same_schema(files: Sequence[DatasetFile]) -> None:
    """The first file that disagrees with the first file is InvalidInputError (exit 2,
    check `same_schema`) naming it, the first file and every column that differs: one
    missing, one extra (a renamed column is both), or a dtype of another kind (number,
    text, boolean, ...). Integer and float columns agree, and so do text columns of
    `str` and `object` dtype; the order of the columns does not matter (frames are
    aligned by name)."""
    for other in files[1:]:
        problems = _schema_problems(files[0], other)
        if problems:
            raise InvalidInputError(other.path, problems)


def dataset_sha256(files: Sequence[DatasetFile]) -> str:
    """The dataset's fingerprint: hex SHA-256 over, for each file in order of its path
    (Python string order), its own hex SHA-256 in lowercase ASCII followed by one `\\n`
    (65 bytes a file). How the files were named (directory, glob, list, in any order)
    does not change it; one changed byte in one file does."""
    digest = hashlib.sha256()
    for info in sorted(files, key=lambda f: f.path):
        digest.update(f"{info.sha256}\n".encode("ascii"))
    return digest.hexdigest()


def read_dataset(
    data: str | Sequence[str],
    name: str | None = None,
    report: Callable[[int, int], None] | None = None,
) -> LoadedData:
    """Every file of a multi-file dataset read in this process, in path order, into one
    frame (a fresh 0..n-1 index); the first file whose schema disagrees stops the read.
    Errors keep naming the file they are about; `name` only labels the data. `report`
    gets (files read, files) after each file."""
    paths = expand_dataset(data)
    fmt = dataset_format(paths)
    files: list[DatasetFile] = []
    frames: list[pd.DataFrame] = []
    for path in paths:
        info, frame = load_partition(path)
        check_same_schema([files[0], info] if files else [info])
        files.append(info)
        frames.append(frame)
        if report is not None:
            report(len(files), len(paths))
    order = frames[0].columns  # the others hold the same columns, maybe in another order
    frame = pd.concat(
        [f if f.columns.equals(order) else f[order] for f in frames], ignore_index=True
    )
    return LoadedData(
        frame=frame,
        source=name or dataset_label(data),
        format=fmt,
        sha256=dataset_sha256(files),
        n_bytes=sum(f.size for f in files),
        files=tuple(files),
    )
