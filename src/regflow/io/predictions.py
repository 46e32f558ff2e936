"""The predictions file, one format for both engines: `true`, `predicted` and `residual`
(float64, never null, so REQUIRED in Parquet) and `split` (dictionary codes), with the pandas
metadata that reads it back as the evaluation's frame (a local run's one file, a dask run's
parts under `predictions/`).

Written without compression and with dictionary encoding for `split` only: the float columns
differ in every row, so neither pays on them, and Snappy nearly doubled the write's CPU.
REQUIRED columns need no definition levels: optional ones took half of the encoding time.
Column statistics (min, max) for the float columns only.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from regflow.io.hashing import FileDigest, written_digest
from regflow.io.write_through import write_through
from regflow.stats.splitting import split_column

FLOAT_COLUMNS = ("true", "predicted", "residual")


def predictions_frame(
    y: np.ndarray, predicted: np.ndarray, held: np.ndarray | None
) -> pd.DataFrame:
    """true, predicted, residual, split: the columns of a run's predictions."""
    return pd.DataFrame(
        {
            "true": y,
            "predicted": predicted,
            "residual": y - predicted,
            "split": split_column(held, len(y)),
        }
    )


def predictions_table(y: np.ndarray, predicted: np.ndarray, held: np.ndarray | None) -> pa.Table:
    """predictions_frame as an Arrow table in the file's schema, built from the arrays:
    building the frame and converting it took a tenth of the dask engine's evaluation pass."""
    split = split_column(held, len(y))
    labels = pa.array(list(split.categories), pa.large_string())
    columns = [pa.array(y), pa.array(predicted), pa.array(y - predicted),
               pa.DictionaryArray.from_arrays(pa.array(split.codes), labels)]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=_schema(held is not None))


def frame_as_table(frame: pd.DataFrame) -> pa.Table:
    """A predictions frame (predictions_frame's columns) as an Arrow table in the file's schema."""
    converted = pa.Table.from_pandas(frame, preserve_index=False)
    return pa.Table.from_arrays(converted.columns, schema=_required(converted.schema))


def write_predictions(table: pa.Table, target: Path | pa.NativeFile) -> None:
    pq.write_table(
        table, target, use_dictionary=["split"], compression="none",
        write_statistics=list(FLOAT_COLUMNS),  # a label's min and max took 4 ms a 1M rows
    )  # fmt: skip


def write_predictions_part(table: pa.Table, target: Path) -> FileDigest:
    """One part of a partitioned run's predictions: encoded in memory, written past the page
    cache and synced (regflow.io.write_through), and its SHA-256 taken from those bytes, so
    the registry links the part in under that digest instead of reading it back to hash it."""
    sink = pa.BufferOutputStream()
    write_predictions(table, sink)
    with memoryview(sink.getvalue()) as data:
        write_through(data, target)
        return written_digest(data, str(target))


@functools.cache
def _schema(has_holdout: bool) -> pa.Schema:
    none = np.zeros(0)
    held = np.zeros(0, dtype=bool) if has_holdout else None
    converted = pa.Schema.from_pandas(predictions_frame(none, none, held), preserve_index=False)
    return _required(converted)


def _required(schema: pa.Schema) -> pa.Schema:
    for name in FLOAT_COLUMNS:
        i = schema.get_field_index(name)
        schema = schema.set(i, schema.field(i).with_nullable(False))
    return schema
