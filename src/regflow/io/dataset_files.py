"""Which files a multi-file dataset names: a directory, a glob or several paths, local or at
any fsspec URL.

Import-light (fsspec only, and only for URLs), so that the CLI's pre-flight can list a
dataset's files before Prefect starts. Reading and fingerprinting them is regflow.io.datasets.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from urllib.parse import urlparse

from regflow.errors import InvalidInputError, Problem
from regflow.io.sources import FORMATS, detect_format, is_remote, local_path

__all__ = ["dataset_format", "dataset_label", "expand_dataset", "is_multi_file"]

_GLOB_CHARS = frozenset("*?[")
# Names that are never data: hidden files, and the markers and metadata Spark, Hadoop and
# Arrow write beside partitions (_SUCCESS, _metadata, _common_metadata, _temporary/).
_SKIPPED_PREFIXES = (".", "_")


def _has_glob(source: str) -> bool:
    return any(char in _GLOB_CHARS for char in source)


def _is_directory(source: str) -> bool:
    """A local directory, or a URL naming a folder: ending in `/`, or with no extension (a
    file needs .csv or .parquet). Deciding this for a URL costs no network round trip."""
    if is_remote(source):
        path = urlparse(source).path
        return path.endswith("/") or not PurePosixPath(path).suffix
    return os.path.isdir(local_path(source))


def is_multi_file(data: str | Sequence[str]) -> bool:
    """A directory, a glob pattern (`*`, `?`, `[`) or a list of other than one path.

    A local file whose name holds `[` or `?` is that file, not a pattern. An empty list is
    multi-file too, so that expand_dataset reports it.
    """
    if not isinstance(data, str):
        return len(data) != 1 or is_multi_file(data[0])
    if _has_glob(data) and not (not is_remote(data) and os.path.isfile(local_path(data))):
        return True
    return _is_directory(data)


def dataset_label(data: str | Sequence[str]) -> str:
    """What messages and the card call a dataset: the pattern or folder as given, or for a
    list its first path and how many more."""
    if isinstance(data, str):
        return data
    if len(data) == 1:
        return data[0]
    return f"{data[0]} (+{len(data) - 1} more files)" if data else "(no files)"


def _is_data_name(name: str) -> bool:
    return not name.startswith(_SKIPPED_PREFIXES) and PurePosixPath(name).suffix.lower() in FORMATS


def _not_hidden(path: str) -> bool:
    return not PurePosixPath(path.replace(os.sep, "/")).name.startswith(_SKIPPED_PREFIXES)


def _nothing_found(pattern: str, message: str) -> InvalidInputError:
    return InvalidInputError.single(pattern, "dataset_files", message)


def _local_files(source: str) -> list[str]:
    path = local_path(source)
    if _has_glob(source) and not os.path.isfile(path):
        matched = [
            p for p in glob.glob(path, recursive=True) if os.path.isfile(p) and _not_hidden(p)
        ]
        if not matched:
            raise _nothing_found(source, "the pattern matches no file")
        return matched
    if os.path.isdir(path):
        found = []
        for folder, subfolders, names in os.walk(path):
            subfolders[:] = [d for d in subfolders if not d.startswith(_SKIPPED_PREFIXES)]
            found += [os.path.join(folder, n) for n in names if _is_data_name(n)]
        if not found:
            raise _nothing_found(source, "the directory holds no .csv or .parquet file")
        return found
    return [path]  # one of several paths: read_partition checks it is there


def _remote_files(source: str) -> list[str]:
    from regflow.io.table_reading import open_filesystem, remote_errors, remote_failure

    filesystem, path = open_filesystem(source)
    try:
        if _has_glob(source):
            # With details: whether each match is a file, without one more request each.
            found = filesystem.glob(path, detail=True)
            matched = [p for p, info in found.items() if info["type"] != "directory"]
            matched = [p for p in matched if _not_hidden(p)]
            what = "the pattern matches no file"
        elif _is_directory(source):
            matched = [
                p
                for p in filesystem.find(path)
                if _is_data_name(PurePosixPath(p).name)
                and not any(
                    part.startswith(_SKIPPED_PREFIXES)
                    for part in PurePosixPath(p).relative_to(path.rstrip("/") or "/").parts
                )
            ]
            what = "the folder holds no .csv or .parquet file"
        else:
            return [source]
    except remote_errors() as err:
        raise remote_failure(source, err) from None
    if not matched:
        raise _nothing_found(source, what)
    return [filesystem.unstrip_protocol(p) for p in matched]


def dataset_format(files: Sequence[str]) -> str:
    """The one format (csv or parquet) of every file; two formats name a file of each."""
    first: dict[str, str] = {}
    for path in files:
        first.setdefault(detect_format(path), path)
    if len(first) > 1:
        (csv_file, parquet_file) = (first["csv"], first["parquet"])
        raise InvalidInputError(
            parquet_file,
            [
                Problem(
                    check="same_format",
                    message=f"a dataset is all CSV or all Parquet: '{csv_file}' is CSV and "
                    f"'{parquet_file}' is Parquet",
                    file=parquet_file,
                )
            ],
        )
    return next(iter(first))


def _sorted_unique(paths: Iterable[str], given: str) -> list[str]:
    ordered = sorted(paths)
    repeated = sorted({p for p, q in itertools.pairwise(ordered) if p == q})
    if repeated:
        raise InvalidInputError.single(
            repeated[0], "dataset_files", f"the dataset {given} names this file more than once"
        )
    return ordered


def expand_dataset(data: str | Sequence[str]) -> list[str]:
    """The dataset's files, sorted by path, all of one format.

    A directory means its .csv/.parquet/.pq files, in its subfolders too (hive-style
    `key=value/` folders), skipping hidden files and `_`-prefixed markers (`_SUCCESS`,
    `_metadata`) and folders; a glob matches through fsspec for URLs and the glob module for
    local paths (`**` included). Local files are named by their path (`file://` dropped),
    remote ones by their full URL. Nothing matched, a file named twice or mixed formats are
    InvalidInputError (exit 2): `dataset_files`, `same_format`.
    """
    sources = [data] if isinstance(data, str) else list(data)
    if not sources:
        raise _nothing_found("(no files)", "the list of data files is empty")
    files: list[str] = []
    for source in sources:
        if is_remote(source):
            files += _remote_files(source)
        else:
            files += [os.path.normpath(p) for p in _local_files(source)]
    ordered = _sorted_unique(files, dataset_label(data))
    dataset_format(ordered)
    return ordered
