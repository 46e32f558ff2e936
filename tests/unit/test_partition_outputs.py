"""The predictions file both engines write (regflow.io.predictions): a dask worker's part,
built straight from the arrays, is the local run's frame in the same schema (pandas metadata
included; the float columns REQUIRED), and reads back as that frame. A part's writer returns
the SHA-256 of the very bytes on disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regflow.io.predictions import (
    FLOAT_COLUMNS,
    frame_as_table,
    predictions_frame,
    predictions_table,
    write_predictions,
    write_predictions_part,
)


@pytest.mark.parametrize("with_holdout", [False, True])
def test_predictions_table_is_the_frame_in_the_files_schema(
    with_holdout: bool, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    y, predicted = rng.normal(size=500), rng.normal(size=500)
    held = rng.random(500) < 0.2 if with_holdout else None
    frame = predictions_frame(y, predicted, held)
    built = predictions_table(y, predicted, held)
    assert built.equals(frame_as_table(frame), check_metadata=True)
    converted = pa.Table.from_pandas(frame, preserve_index=False)
    assert built.schema.metadata == converted.schema.metadata  # pandas' own metadata
    assert [f.nullable for f in built.schema] == [False, False, False, True]
    assert built.column_names[:3] == list(FLOAT_COLUMNS)
    assert built.to_pandas().equals(frame)

    write_predictions(built, tmp_path / "part.parquet")
    on_disk = pq.ParquetFile(tmp_path / "part.parquet")
    columns = on_disk.metadata.row_group(0)
    assert {columns.column(i).compression for i in range(4)} == {"UNCOMPRESSED"}
    assert [on_disk.schema.column(i).max_definition_level for i in range(3)] == [0, 0, 0]
    assert pd.read_parquet(tmp_path / "part.parquet").equals(frame)


def test_a_part_is_the_same_file_and_comes_with_its_digest(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    y, predicted = rng.normal(size=20_000), rng.normal(size=20_000)
    table = predictions_table(y, predicted, rng.random(20_000) < 0.3)
    write_predictions(table, tmp_path / "streamed.parquet")
    digest = write_predictions_part(table, tmp_path / "part.parquet")
    on_disk = (tmp_path / "part.parquet").read_bytes()
    assert on_disk == (tmp_path / "streamed.parquet").read_bytes()
    assert (digest.sha256, digest.size) == (hashlib.sha256(on_disk).hexdigest(), len(on_disk))
    assert digest.holds(str(tmp_path / "part.parquet"))
    assert not digest.holds(str(tmp_path / "streamed.parquet"))
