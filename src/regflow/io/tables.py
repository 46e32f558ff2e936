"""In-memory tables as a Parquet file, so they take the same path through the pipeline as files.

The flows read a path and fingerprint its bytes (SHA-256). A pandas DataFrame or a pyarrow
Table is written to Parquet without its index: the same rows and columns give the same bytes
(with the same pandas and pyarrow versions), so training on an unchanged frame again is
recognised as unchanged input, whatever its index.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from regflow.errors import InvalidInputError, Problem

FILE_NAME = "data.parquet"


def is_in_memory(data: object) -> bool:
    """A pandas DataFrame, a pyarrow Table or any table with the Arrow C stream interface
    (polars, DuckDB, ...); a path or URL is not."""
    return isinstance(data, pd.DataFrame | pa.Table) or hasattr(data, "__arrow_c_stream__")


def in_memory_name(data: object) -> str:
    """What messages and the model card call a table that has no file: `<pandas.DataFrame>`."""
    kind = type(data)
    return f"<{kind.__module__.split('.')[0]}.{kind.__name__}>"


def to_arrow(data: Any, name: str) -> pa.Table:
    """The table as Arrow, without a pandas index; what Parquet cannot hold is invalid input
    naming the data."""
    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]  # pyarrow names columns by str()
    else:
        if not isinstance(data, pa.Table):
            data = pa.table(data)  # through the Arrow C stream interface
        names = list(data.column_names)
    _refuse_duplicate_names(names, name)
    if isinstance(data, pa.Table):
        return data
    try:
        # The index is not data: as a column it would become a feature, and it would make
        # equal frames with different indexes hash differently.
        return pa.Table.from_pandas(data, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise InvalidInputError.single(
            name, "arrow_types", f"a column cannot be stored as Parquet: {err}"
        ) from None


def _refuse_duplicate_names(names: list[str], name: str) -> None:
    # Parquet would refuse them with an Arrow riddle: ingest's own check, by the same name.
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
    if dupes:
        raise InvalidInputError(
            name,
            [
                Problem(
                    check="unique_column_names",
                    message="the table has more than one column with this name",
                    file=name,
                    column=column,
                )
                for column in dupes
            ],
        )


def write_parquet(data: Any, folder: Path, name: str) -> Path:
    """Write `data` to `folder`/data.parquet and return the path."""
    path = folder / FILE_NAME
    pq.write_table(to_arrow(data, name), path)
    return path
