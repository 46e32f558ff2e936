"""In-memory tables become Parquet files with stable bytes; ingest names them as asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from regflow.errors import InvalidInputError
from regflow.io.tables import in_memory_name, is_in_memory, write_parquet
from regflow.tasks.ingest import read_table


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_equal_tables_give_equal_bytes_whatever_the_index(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=50), "b": rng.integers(0, 9, 50), "y": 1.0})
    first = _sha256(write_parquet(frame, tmp_path, "<x>"))
    assert _sha256(write_parquet(frame.copy(), tmp_path, "<x>")) == first
    shuffled_index = frame.set_axis(rng.permutation(50))
    assert _sha256(write_parquet(shuffled_index, tmp_path, "<x>")) == first
    as_arrow = pa.Table.from_pandas(frame, preserve_index=False)
    assert _sha256(write_parquet(as_arrow, tmp_path, "<x>")) == first
    changed = frame.assign(y=frame.y.where(frame.index != 7, 2.0))
    assert _sha256(write_parquet(changed, tmp_path, "<x>")) != first


def test_the_index_is_not_a_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index([5, 6], name="id"))
    loaded = read_table(str(write_parquet(frame, tmp_path, "<x>")))
    assert list(loaded.frame.columns) == ["x"]


def test_names_and_kinds() -> None:
    assert in_memory_name(pd.DataFrame()) == "<pandas.DataFrame>"
    assert in_memory_name(pa.table({"a": [1]})) == "<pyarrow.Table>"
    assert is_in_memory(pd.DataFrame()) and is_in_memory(pa.table({"a": [1]}))
    assert not is_in_memory("data.csv") and not is_in_memory(Path("data.csv"))
    assert not is_in_memory(np.ones(3))


def test_what_parquet_cannot_hold_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        write_parquet(pd.DataFrame([[1, 2, 3]], columns=["a", "a", "y"]), tmp_path, "<df>")
    assert [(p.check, p.column, p.file) for p in caught.value.problems] == [
        ("unique_column_names", "a", "<df>")
    ]
    with pytest.raises(InvalidInputError, match="arrow_types"):
        write_parquet(pd.DataFrame({"a": [1, "two", 3.0]}), tmp_path, "<df>")


def test_read_table_calls_the_data_by_its_name(tmp_path: Path) -> None:
    flat = write_parquet(pa.table({"x": [1.0, 2.0], "y": [3.0, 4.0]}), tmp_path, "n")
    assert read_table(str(flat), "weekly").source == "weekly"
    nested = write_parquet(pa.table({"x": [1.0, 2.0], "y": [[1], [2]]}), tmp_path, "n")
    with pytest.raises(InvalidInputError) as caught:
        read_table(str(nested), "weekly")
    assert caught.value.source == "weekly" and str(tmp_path) not in str(caught.value)
    assert [(p.check, p.column, p.file) for p in caught.value.problems] == [
        ("flat_columns", "y", "weekly")
    ]
