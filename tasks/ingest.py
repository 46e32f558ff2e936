"""Ingest: read a CSV or Parquet dataset from a local path or an fsspec URL, with its SHA-256;
a directory, glob or list of files is read through regflow.io.datasets."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from regflow.errors import InvalidInputError
from regflow.io.datasets import dataset_label, is_multi_file, read_dataset
from regflow.io.hashing import sha256_file
from regflow.io.sources import check_local_file, detect_format, is_remote
from regflow.io.table_reading import (
    PARSE_BY_PATH_MAX_BYTES,
    check_url_scheme,
    fetch_remote,
    parse_bytes,
    parse_local,
)
from regflow.io.text import human_size
from regflow.runtime import progress
from regflow.schemas.frames import LoadedData
from regflow.tasks.outcomes import pipeline_task


def _sha256_file(path: str, total: int = 0) -> tuple[str, int]:
    # Bytes hashed stand for bytes read: the parse, on the other core, is one call.
    def report(size: int) -> None:
        progress.update("ingest", size, f"{human_size(size)} of {human_size(total)}")

    return sha256_file(path, report)


def _read_local(source: str) -> LoadedData:
    path, fmt = check_local_file(source)
    total = os.path.getsize(path)
    by_path = total <= PARSE_BY_PATH_MAX_BYTES
    progress.start("ingest", f"ingest {Path(path).name}", total)
    # Hash on the second core while the first one parses.
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(_sha256_file, path, total)
        frame = parse_local(source, path, fmt, by_path=by_path)
        sha256, size = hashing.result()
    progress.finish("ingest", f"{len(frame):,} rows, {human_size(size)}")
    return LoadedData(frame, source, fmt, sha256, size)


def _read_remote(source: str, fmt: str) -> LoadedData:
    # Remote files are fetched whole, hashed, then parsed from memory.
    check_url_scheme(source)
    progress.start("ingest", f"ingest {source}")
    data = fetch_remote(source)
    frame = parse_bytes(source, data, fmt)
    progress.finish("ingest", f"{len(frame):,} rows, {human_size(len(data))}")
    return LoadedData(frame, source, fmt, hashlib.sha256(data).hexdigest(), len(data))


def _read_many(source: str | Sequence[str], name: str | None) -> LoadedData:
    progress.start("ingest", f"ingest {dataset_label(source)}")

    def report(done: int, total: int) -> None:
        progress.update("ingest", done, f"{done} of {total} files")

    loaded = read_dataset(source, name, report)
    progress.finish(
        "ingest",
        f"{len(loaded.frame):,} rows, {len(loaded.files)} files, {human_size(loaded.n_bytes)}",
    )
    return loaded


def read_table(source: str | Sequence[str], name: str | None = None) -> LoadedData:
    """Read a dataset; every expected problem becomes an InvalidInputError naming the file,
    or `name` when given (in-memory data reaches here as a temporary file: call it by its
    name, not by a path that is gone after the run).

    A directory, a glob or several paths is a multi-file dataset (regflow.io.datasets): its
    files are read in path order into one frame, fingerprinted together, and its errors
    keep naming the file they are about (`name` only labels the data).
    """
    if is_multi_file(source):
        return _read_many(source, name)
    if not isinstance(source, str):
        source = source[0]  # one path in a list is that file
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
