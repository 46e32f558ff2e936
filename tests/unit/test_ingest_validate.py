"""Ingest and validation: the plain functions, on files the tests write themselves."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regflow.errors import InvalidInputError
from regflow.io.table_reading import parse_csv
from regflow.tasks.ingest import read_table
from regflow.tasks.validate import resolve_columns, validate_dataset


def _problems(err: pytest.ExceptionInfo[InvalidInputError]) -> dict[tuple[str | None, str], object]:
    return {(p.column, p.check): p for p in err.value.problems}


def test_reads_seed_csv_with_its_fingerprint(seed_csv: Path) -> None:
    loaded = read_table(str(seed_csv))
    assert loaded.format == "csv"
    assert loaded.frame["x"].tolist() == [1, 2, 3, 3.5]
    assert loaded.frame["y"].tolist() == [2, 4, 6, 7]
    assert loaded.sha256 == hashlib.sha256(seed_csv.read_bytes()).hexdigest()


def test_reads_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 4.1, 5.9]})
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    loaded = read_table(str(path))
    assert loaded.format == "parquet"
    pd.testing.assert_frame_equal(loaded.frame, frame)


@pytest.mark.parametrize(
    ("name", "content", "check"),
    [
        ("empty.csv", b"", "not_empty"),
        ("latin1.csv", "x,y\n1,2\n2,3\n3,5\ncaf\u00e9,4\n".encode("latin-1"), "utf8"),
        ("dupes.csv", b"x,x,y\n1,2,3\n2,3,4\n3,4,6\n", "unique_column_names"),
        ("data.json", b"{}", "file_format"),
    ],
)
def test_bad_files_are_named_with_their_check(
    tmp_path: Path, name: str, content: bytes, check: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInputError) as err:
        read_table(str(path))
    assert err.value.problems[0].check == check
    assert str(path) in str(err.value)


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("bom", [b"", BOM], ids=["plain", "bom"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("by_path", [True, False], ids=["by_path", "streamed"])
def test_byte_order_mark_neither_hides_duplicates_nor_joins_a_name(
    bom: bytes, newline: bytes, by_path: bool
) -> None:
    rows = [b"1,2,3", b"2,3,4", b"3,4,6"]
    with pytest.raises(InvalidInputError) as err:
        parse_csv(io.BytesIO(bom + newline.join([b"x,x,y", *rows])), "d.csv", by_path=by_path)
    assert [(p.check, p.column) for p in err.value.problems] == [("unique_column_names", "x")]
    frame = parse_csv(io.BytesIO(bom + newline.join([b"x,z,y", *rows])), "d.csv")
    assert list(frame.columns) == ["x", "z", "y"]


def test_byte_order_mark_by_path_and_alone(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(BOM + b"x,y\r\n1,2\r\n2,4\r\n3,7\r\n")
    assert list(read_table(str(path)).frame.columns) == ["x", "y"]
    path.write_bytes(BOM)
    with pytest.raises(InvalidInputError) as err:
        read_table(str(path))
    assert err.value.problems[0].check == "not_empty"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file"):
        read_table(str(tmp_path / "missing.csv"))
    with pytest.raises(InvalidInputError, match="directory"):
        read_table(str(tmp_path))


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"x,y\n1,2\n2,4\n\xff\xfe,6\n")
    with pytest.raises(InvalidInputError, match="line 4"):
        read_table(str(path))


def test_validation_lists_every_failure_with_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("x,z,y\n1,1,2\nabc,1,4\n3,1,\n4,1,inf\n5,1,9\n")
    loaded = read_table(str(path))
    with pytest.raises(InvalidInputError) as err:
        validate_dataset(loaded, "y", ["x", "z"])
    found = _problems(err)
    assert found[("x", "coerce_dtype")].rows == [2]
    assert found[("x", "coerce_dtype")].values == ["abc"]
    assert found[("y", "not_nullable")].rows == [3]
    assert found[("y", "finite")].rows == [4]
    assert ("z", "not_constant") in found
    message = str(err.value)
    assert str(path) in message and "column 'x'" in message and "row 2 (abc)" in message


def test_too_few_rows_and_float32_overflow() -> None:
    from regflow.schemas.dataset import validate_frame

    with pytest.raises(InvalidInputError, match=r"fewer than 3 rows \(found 2\)"):
        validate_frame(pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, 3.0]}), ["x"], "y", "f.csv")
    frame = pd.DataFrame({"x": [1.0, 2.0, 1e39], "y": [1.0, 3.0, 2.0]})
    with pytest.raises(InvalidInputError, match="within_float32_range"):
        validate_frame(frame, ["x"], "y", "f.csv")


def test_default_features_are_the_numeric_columns() -> None:
    frame = pd.DataFrame(
        {"id": ["a", "b", "c"], "x1": [1, 2, 3], "x2": [1.0, 0.5, 2.0], "y": [1.0, 2.0, 3.0]}
    )
    features, ignored = resolve_columns(frame, "y", None, "f.csv")
    assert features == ["x1", "x2"]
    assert ignored == ["id"]


def test_column_choice_errors() -> None:
    frame = pd.DataFrame({"x;y": [1, 2, 3]})
    with pytest.raises(InvalidInputError, match="semicolon-separated"):
        resolve_columns(frame, "y", None, "f.csv")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError, match="target is also named as a feature"):
        resolve_columns(frame, "y", ["x", "y"], "f.csv")
    with pytest.raises(InvalidInputError, match="column 'w'"):
        resolve_columns(frame, "y", ["w"], "f.csv")


def test_validated_frame_is_float64(seed_csv: Path) -> None:
    valid = validate_dataset(read_table(str(seed_csv)), "y", None)
    assert valid.features == ["x"]
    assert all(dtype == np.float64 for dtype in valid.frame.dtypes)


def test_check_frame_passes_or_fails_as_validate_frame() -> None:
    """check_frame (the dask workers' check) gives validate_frame's verdict and problems,
    without a copy of the columns and leaving the frame as it was."""
    from regflow.schemas.dataset import check_frame, validate_frame

    good = pd.DataFrame({"x": [1.0, 2.0, 3.0], "n": [1, 2, 3], "y": [2.0, 4.0, 6.5]})
    before = good.copy()
    assert check_frame(good, ["x", "n"], "y", "good.parquet", table_checks=False) is None
    pd.testing.assert_frame_equal(good, before)
    bad = good.assign(x=[1.0, np.nan, np.inf])
    with pytest.raises(InvalidInputError) as checked:
        check_frame(bad, ["x", "n"], "y", "bad.parquet", table_checks=False)
    with pytest.raises(InvalidInputError) as validated:
        validate_frame(bad, ["x", "n"], "y", "bad.parquet", table_checks=False)
    assert checked.value.problems == validated.value.problems
    assert {p.check for p in checked.value.problems} >= {"not_nullable"}
    same_name = good.rename(columns={"n": "x"})  # repeated names: pandera's report
    with pytest.raises(InvalidInputError):
        check_frame(same_name, ["x"], "y", "dup.parquet", table_checks=False)
