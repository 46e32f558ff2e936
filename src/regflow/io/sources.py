"""What a data source's name and first bytes say, without reading the data: local or remote,
CSV or Parquet, and a CSV header. Import-light, so that the CLI's pre-flight can use it before
Prefect and torch load."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from urllib.parse import urlparse

from regflow.errors import InvalidInputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
UTF8_BOM = b"\xef\xbb\xbf"


def is_remote(source: str) -> bool:
    scheme = urlparse(source).scheme
    return len(scheme) > 1 and scheme != "file"  # one letter is a Windows drive


def local_path(source: str) -> str:
    """The file a local source names (`file://` stripped)."""
    return source[len("file://") :] if source.startswith("file://") else source


def detect_format(source: str) -> str:
    path = urlparse(source).path if is_remote(source) else source
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInputError.single(
            source,
            "file_format",
            f"unsupported extension '{suffix or '(none)'}': use .csv or .parquet",
        )
    return FORMATS[suffix]


def check_local_file(source: str) -> tuple[str, str]:
    """(path, format) of a local source, in ingest's order of checks: not a directory, a
    known extension, present. Shared by ingest and the CLI's pre-flight."""
    path = local_path(source)
    if os.path.isdir(path):
        raise InvalidInputError.single(source, "is_file", "this is a directory, not a file")
    fmt = detect_format(source)
    if not os.path.exists(path):
        raise InvalidInputError.single(source, "file_exists", "no such file")
    return path, fmt


def csv_header(first: bytes) -> list[str]:
    """The column names on the first line of `first` (bytes without the byte-order mark)."""
    line = first.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    return next(csv.reader([line]), [])
