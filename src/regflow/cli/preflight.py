"""Checks `regflow train` and `predict` run before Prefect starts (or torch loads).

Starting the temporary Prefect server takes seconds (tens on a busy machine), so a typo in a
path or a column name used to wait that long for its answer. These checks read at most a
file's header; each raises the very error the flow would raise (same check, message and exit
code). Anything they cannot decide cheaply (a remote file, a header pandas may read
differently, a registry that fails in some other way) is left to the flow, which checks it
again anyway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from regflow.errors import InvalidInputError
from regflow.io.dataset_files import dataset_label, expand_dataset, is_multi_file
from regflow.io.sources import (
    UTF8_BOM,
    check_local_file,
    csv_header,
    detect_format,
    is_remote,
    local_path,
)
from regflow.schemas.header import header_problems
from regflow.schemas.params import DataParams, ScoreParams, default_model_name

HEADER_MAX_BYTES = 4 << 20  # a header longer than this is left to the flow


def check_data(source: str | Sequence[str], name: str | None = None) -> str | None:
    """The local file's format (as ingest checks it, in its order), or None for a URL.

    Errors name the data `name` when given, as ingest does. A multi-file dataset is checked
    by check_dataset."""
    if is_multi_file(source):
        first = check_dataset(source)
        return None if first is None else first[1]
    if not isinstance(source, str):
        source = source[0]  # one path in a list is that file
    try:
        if is_remote(source):
            detect_format(source)  # the syntax only: reading it is a network round trip
            return None
        path, fmt = check_local_file(source)
    except InvalidInputError as err:
        raise err if name is None else err.renamed(name) from None
    # An unreadable file: the OSError ends the command as the CLI ends any OS error (exit 1).
    with open(path, "rb"):
        pass
    return fmt


def check_dataset(source: str | Sequence[str]) -> tuple[str, str] | None:
    """A local multi-file dataset's first file and format, after the checks its names
    decide: a glob or folder that holds no data file (`dataset_files`), mixed formats
    (`same_format`) and, for each listed file, ingest's file checks. Errors name the file
    or pattern, as ingest's do; a dataset with a URL in it is left to the flow."""
    sources = [source] if isinstance(source, str) else list(source)
    if any(is_remote(s) for s in sources):
        return None
    files = expand_dataset(source)
    formats = [check_local_file(path) for path in files]
    for path, _ in formats:
        with open(path, "rb"):  # unreadable: the OSError ends the command (exit 1)
            pass
    return formats[0]


def check_train(data: DataParams) -> None:
    """File checks, then the header's column checks (target, --features, --categorical);
    of a multi-file dataset, its first file's header (check_same_schema holds the others
    to it)."""
    if is_multi_file(data.path):
        first = check_dataset(data.path)
        if first is None:
            return
        path, fmt = first
    else:
        single = check_data(data.path, data.name)
        if single is None:
            return
        only = data.path if isinstance(data.path, str) else data.path[0]
        path, fmt = local_path(only), single
    columns = csv_columns(path) if fmt == "csv" else parquet_columns(path)
    if columns is None:
        return
    source = data.name or dataset_label(data.path)
    problems = header_problems(columns, data.target, data.features, source, data.categorical)
    if problems:
        raise InvalidInputError(source, problems)


def requested_ref(params: ScoreParams) -> str:
    """The reference predict loads: the one given (validated) or `<data name>@champion`."""
    from regflow.registry import parse_ref

    return str(
        parse_ref(
            params.model
            if params.model is not None
            else f"{default_model_name(params.data)}@champion"
        )
    )


def check_predict(params: ScoreParams, ref: str) -> None:
    """The registry and the model, in the flow's order; then the data file."""
    from regflow.registry import NotFoundError, Registry

    try:
        with Registry.open(params.registry, store=params.registry_store, create=False) as reg:
            reg.resolve(ref)
    except NotFoundError:  # no registry, model, version or alias (InvalidReference too)
        raise
    except Exception:  # anything else: the flow reports it, after its retries
        pass
    check_data(params.data, params.data_name)


def csv_columns(path: str) -> list[str] | None:
    """The header's names as pandas will read them, or None where that is not certain."""
    with open(path, "rb") as fh:
        first = fh.read(HEADER_MAX_BYTES).removeprefix(UTF8_BOM)
    line, newline, _ = first.partition(b"\n")
    if not first.strip() or (not newline and len(first) >= HEADER_MAX_BYTES - len(UTF8_BOM)):
        return None  # empty (ingest says so) or a header too long to be sure of
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return None  # ingest names the line
    if line.count(b'"') % 2:
        return None  # a quoted name spanning lines
    names = csv_header(line)
    return names if _plain(names) else None


def parquet_columns(path: str) -> list[str] | None:
    """The schema's column names from the footer, or None where the frame may differ."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError):
        return None  # ingest reports parquet_format
    meta = schema.pandas_metadata or {}
    if any(isinstance(c, str) for c in meta.get("index_columns", [])):
        return None  # a stored index becomes the frame's index, not a column
    if any(pa.types.is_nested(f.type) for f in schema):
        return None  # ingest reports flat_columns first
    names = [str(n) for n in schema.names]
    return names if _plain(names) else None


def _plain(names: list[str]) -> bool:
    """No empty or duplicate names: pandas renames those, and ingest reports duplicates."""
    return bool(names) and all(names) and max(Counter(names).values()) == 1
