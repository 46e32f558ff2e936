"""Multi-file datasets (regflow.io.datasets): which files a directory, glob, list or URL names,
their fingerprint, the schema check, and the local read, on real files in tmp_path and in
fsspec's memory filesystem."""

from __future__ import annotations

import hashlib
import pickle
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regflow.errors import InvalidInputError
from regflow.io import datasets
from regflow.io.datasets import (
    DatasetFile,
    check_same_schema,
    dataset_sha256,
    describe_file,
    expand_dataset,
    is_multi_file,
    load_partition,
    outline_file,
    read_float_columns,
    read_partition,
)
from regflow.tasks.ingest import read_table

N_PARTS = 40
ROWS = 5


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame(
        {"x": x, "n": rng.integers(0, 100, rows), "y": 2 * x + rng.normal(0, 0.1, rows)}
    )


@pytest.fixture
def whole() -> pd.DataFrame:
    return _frame(N_PARTS * ROWS, 3)


def _chunks(frame: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame]]:
    for i in range(N_PARTS):
        yield i, frame.iloc[i * ROWS : (i + 1) * ROWS]


@pytest.fixture
def parquet_dir(tmp_path: Path, whole: pd.DataFrame) -> Path:
    """40 Parquet files, with the markers and hidden files writers leave beside them."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, chunk in _chunks(whole):
        chunk.to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "_metadata").write_bytes(b"not data")
    (folder / ".part-000.parquet.crc").write_bytes(b"crc")
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "part-999.parquet").write_bytes(b"half written")
    return folder


@pytest.fixture
def csv_dir(tmp_path: Path, whole: pd.DataFrame) -> Path:
    folder = tmp_path / "csv-parts"
    folder.mkdir()
    for i, chunk in _chunks(whole):
        chunk.to_csv(folder / f"part-{i:03d}.csv", index=False)
    return folder


@pytest.fixture
def memory_fs() -> Iterator[fsspec.AbstractFileSystem]:
    filesystem = fsspec.filesystem("memory")
    yield filesystem
    if filesystem.exists("/ds"):
        filesystem.rm("/ds", recursive=True)


def _parts(folder: Path, suffix: str = ".parquet") -> list[str]:
    return sorted(str(p) for p in folder.glob(f"part-*{suffix}"))


# ---------------------------------------------------------------------------------------
# Which files


def test_is_multi_file(tmp_path: Path, parquet_dir: Path) -> None:
    odd = tmp_path / "a[1].csv"  # a real file whose name looks like a pattern
    odd.write_text("x,y\n1,2\n")
    assert is_multi_file(str(parquet_dir))
    assert is_multi_file(f"{parquet_dir}/part-*.parquet")
    assert is_multi_file([str(odd), str(odd)])
    assert is_multi_file([])
    assert not is_multi_file([str(odd)])
    assert not is_multi_file(str(odd))
    assert not is_multi_file(str(parquet_dir / "part-001.parquet"))
    assert not is_multi_file("https://example.org/data.csv")
    assert is_multi_file("s3://bucket/table/")
    assert is_multi_file("s3://bucket/table")  # no extension: a folder
    assert is_multi_file("https://example.org/part-*.csv")


def test_directory_glob_list_and_urls_name_the_same_files(parquet_dir: Path) -> None:
    expected = _parts(parquet_dir)
    assert len(expected) == N_PARTS
    shuffled = expected.copy()
    random.Random(1).shuffle(shuffled)
    assert expand_dataset(str(parquet_dir)) == expected  # markers and _temporary/ skipped
    assert expand_dataset(f"{parquet_dir}/part-*.parquet") == expected
    assert expand_dataset(f"{parquet_dir}/*") == expected  # _SUCCESS, .crc: not data
    assert expand_dataset(shuffled) == expected
    assert expand_dataset(f"file://{parquet_dir}/part-*.parquet") == expected
    assert expand_dataset(f"file://{parquet_dir}") == expected


def test_directory_is_searched_below_for_hive_style_folders(tmp_path: Path) -> None:
    for year in (2023, 2024):
        folder = tmp_path / "table" / f"year={year}"
        folder.mkdir(parents=True)
        _frame(4, year).to_parquet(folder / "part-0.parquet", index=False)
    assert expand_dataset(str(tmp_path / "table")) == [
        str(tmp_path / "table" / "year=2023" / "part-0.parquet"),
        str(tmp_path / "table" / "year=2024" / "part-0.parquet"),
    ]
    assert len(expand_dataset(f"{tmp_path}/table/**/*.parquet")) == 2


@pytest.mark.usefixtures("memory_fs")
@pytest.mark.parametrize("where", ["{tmp}/nothing-*.parquet", "memory://ds/nothing-*.parquet"])
def test_nothing_matched_names_the_pattern(tmp_path: Path, where: str) -> None:
    pattern = where.format(tmp=tmp_path)
    with pytest.raises(InvalidInputError) as err:
        expand_dataset(pattern)
    assert err.value.exit_code == 2 and err.value.source == pattern
    assert [p.check for p in err.value.problems] == ["dataset_files"]
    assert "matches no file" in str(err.value)
    with pytest.raises(InvalidInputError, match="directory holds no"):
        read_table(str(tmp_path))  # an empty folder
    with pytest.raises(InvalidInputError, match="empty"):
        expand_dataset([])


def test_a_file_named_twice_is_refused(parquet_dir: Path) -> None:
    first = _parts(parquet_dir)[0]
    with pytest.raises(InvalidInputError, match="more than once") as err:
        expand_dataset([first, str(parquet_dir / "." / Path(first).name)])
    assert err.value.problems[0].check == "dataset_files"


def test_mixed_formats_name_a_file_of_each(parquet_dir: Path, csv_dir: Path) -> None:
    one_csv = _parts(csv_dir, ".csv")[3]
    with pytest.raises(InvalidInputError) as err:
        expand_dataset([*_parts(parquet_dir)[:2], one_csv])
    assert err.value.problems[0].check == "same_format"
    assert one_csv in str(err.value) and _parts(parquet_dir)[0] in str(err.value)


# ---------------------------------------------------------------------------------------
# Describing and fingerprinting


def test_describe_parquet_from_the_footer(parquet_dir: Path) -> None:
    path = _parts(parquet_dir)[7]
    info = describe_file(path)
    data = Path(path).read_bytes()
    assert info == DatasetFile(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        rows=ROWS,
        columns=("x", "n", "y"),
        dtypes=("float64", "int64", "float64"),
    )
    assert pickle.loads(pickle.dumps(info)) == info  # travels back from a Dask worker


def test_describe_csv_as_ingest_parses_it(csv_dir: Path) -> None:
    path = _parts(csv_dir, ".csv")[0]
    info = describe_file(path)
    frame = read_table(path).frame
    assert info.rows == len(frame) == ROWS
    assert info.dtypes == tuple(str(t) for t in frame.dtypes)
    assert info.sha256 == read_table(path).sha256  # one file's own fingerprint


def test_outline_leaves_parquet_unhashed_and_describes_csv_in_full(
    parquet_dir: Path, csv_dir: Path
) -> None:
    """The dask engine's describe pass: a Parquet file's footer only (its bytes are hashed
    when the validate pass reads them, by load_partition); a CSV file as describe_file."""
    path = _parts(parquet_dir)[7]
    outline = outline_file(path)
    assert outline.sha256 == datasets.UNHASHED
    assert outline == replace(describe_file(path), sha256=datasets.UNHASHED)
    assert load_partition(path)[0] == describe_file(path)
    csv_path = _parts(csv_dir, ".csv")[0]
    assert outline_file(csv_path) == describe_file(csv_path)


def test_float_columns_straight_from_arrow_are_what_pandas_gives(tmp_path: Path) -> None:
    path = tmp_path / "kinds.parquet"
    table = pa.table(
        {
            "i": pa.array([1, None, 3, 2**60 + 1], pa.int64()),
            "u": pa.array([7, 8, 9, 10], pa.uint8()),
            "f": pa.array([0.1, 0.2, None, float("inf")], pa.float32()),
            "b": pa.array([True, False, True, None]),
            "d": pa.array([1.5, -2.0, 3.25, 1e300]),
            "s": pa.array(["1", "2", "3", "4"]),
        }
    )
    pq.write_table(table, path)
    names = ["i", "u", "f", "b", "d"]
    frame = read_partition(str(path))
    values = read_float_columns(str(path), names)
    assert values is not None
    for name, got in zip(names, values, strict=True):
        want = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.float64
    assert read_float_columns(str(path), ["d", "s"]) is None  # text: read_partition's way
    assert read_float_columns(str(path), ["d", "missing"]) is None
    assert read_float_columns(str(path), ["d", "d"]) is None
    assert read_float_columns(str(tmp_path / "gone.parquet"), ["d"]) is None


def test_float64_columns_of_several_row_groups_read_whole(tmp_path: Path) -> None:
    """A float64 column without nulls comes straight from Arrow's buffer (no copy); one of
    several row groups, or with nulls, is joined and copied: the same values either way."""
    path = tmp_path / "groups.parquet"
    values = np.random.default_rng(5).normal(size=1000)
    with_null = pa.array([*values[:-1], None], pa.float64())
    pq.write_table(pa.table({"a": values, "n": with_null}), path, row_group_size=300)
    got_a, got_n = read_float_columns(str(path), ["a", "n"]) or []
    np.testing.assert_array_equal(got_a, values)
    np.testing.assert_array_equal(got_n, [*values[:-1], np.nan])
    single = tmp_path / "single.parquet"
    pq.write_table(pa.table({"a": values}), single)
    (whole,) = read_float_columns(str(single), ["a"]) or []
    np.testing.assert_array_equal(whole, values)
    assert whole.flags.c_contiguous and not whole.flags.writeable  # Arrow's own memory


def test_sha256_file_maps_or_streams(tmp_path: Path) -> None:
    """Memory-mapped hashing gives hashlib's digest over several blocks, reports progress up
    to the size, and an empty file (which cannot be mapped) still hashes."""
    from regflow.io.hashing import HASH_BLOCK, sha256_file

    data = random.Random(7).randbytes(2 * HASH_BLOCK + 12345)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    seen: list[int] = []
    assert sha256_file(str(path), seen.append) == (hashlib.sha256(data).hexdigest(), len(data))
    assert seen == sorted(seen) and seen[-1] == len(data) and len(seen) == 3
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert sha256_file(str(empty)) == (hashlib.sha256(b"").hexdigest(), 0)


def test_per_file_functions_pickle_by_reference() -> None:
    for function in (describe_file, read_partition, load_partition):
        assert pickle.loads(pickle.dumps(function)) is function


def test_fingerprint_layout_and_order(parquet_dir: Path) -> None:
    files = [describe_file(p) for p in _parts(parquet_dir)]
    expected = hashlib.sha256(b"".join(f"{f.sha256}\n".encode() for f in files)).hexdigest()
    assert dataset_sha256(files) == expected
    assert dataset_sha256(list(reversed(files))) == expected


def test_fingerprint_is_the_same_however_the_files_are_named(
    parquet_dir: Path, memory_fs: fsspec.AbstractFileSystem
) -> None:
    listed = _parts(parquet_dir)
    for path in listed:
        memory_fs.pipe(f"/ds/{Path(path).name}", Path(path).read_bytes())
    ways = [
        str(parquet_dir),
        f"{parquet_dir}/part-*.parquet",
        list(reversed(listed)),
        f"file://{parquet_dir}/part-*.parquet",
        "memory://ds/part-*.parquet",
        "memory://ds/",
    ]
    loaded = [read_table(way) for way in ways]
    assert {one.sha256 for one in loaded} == {loaded[0].sha256}
    assert len(loaded[0].files) == N_PARTS
    assert loaded[-1].files[0].path == "memory:///ds/part-000.parquet"
    for one in loaded[1:]:
        pd.testing.assert_frame_equal(one.frame, loaded[0].frame)


def test_one_changed_byte_changes_the_fingerprint(csv_dir: Path) -> None:
    before = read_table(str(csv_dir)).sha256
    path = Path(_parts(csv_dir, ".csv")[21])
    text = path.read_bytes()
    digit = text.index(b"1", text.index(b"\n"))  # a digit of a value, not the header
    path.write_bytes(text[:digit] + b"2" + text[digit + 1 :])
    assert read_table(str(csv_dir)).sha256 != before


# ---------------------------------------------------------------------------------------
# Schemas


def _problems(err: pytest.ExceptionInfo[InvalidInputError]) -> dict[str | None, str]:
    return {p.column: p.check for p in err.value.problems}


def test_renamed_column_names_the_file_and_both_columns(parquet_dir: Path) -> None:
    odd = parquet_dir / "part-017.parquet"
    pd.read_parquet(odd).rename(columns={"n": "count"}).to_parquet(odd, index=False)
    with pytest.raises(InvalidInputError) as err:
        read_table(str(parquet_dir))
    assert err.value.exit_code == 2 and err.value.source == str(odd)
    assert _problems(err) == {"n": "same_schema", "count": "same_schema"}
    assert str(parquet_dir / "part-000.parquet") in str(err.value)


def test_text_where_the_first_file_has_numbers(csv_dir: Path) -> None:
    odd = csv_dir / "part-005.csv"
    frame = pd.read_csv(odd)
    frame["x"] = [f"v{i}" for i in range(len(frame))]
    frame.to_csv(odd, index=False)
    with pytest.raises(InvalidInputError) as err:
        read_table(f"{csv_dir}/*.csv")
    assert err.value.source == str(odd) and _problems(err) == {"x": "same_schema"}
    assert "(text) here, but float64 (number)" in str(err.value)


def test_a_stray_text_cell_in_a_csv_file_is_not_a_schema_change(csv_dir: Path) -> None:
    """One "twelve" makes that file's column text; its values are still mostly numbers, so the
    files agree and the cell is validation's to name (as in a single file)."""
    odd = csv_dir / "part-005.csv"
    frame = pd.read_csv(odd).astype({"x": object})
    frame.loc[3, "x"] = "twelve"
    frame.to_csv(odd, index=False)
    described = describe_file(str(odd))
    assert described.numeric_text == ("x",)
    table = read_table(f"{csv_dir}/*.csv").frame
    assert (table["x"] == "twelve").sum() == 1  # read as it is; validation names the row


def test_local_validation_names_each_bad_rows_file_and_row(csv_dir: Path) -> None:
    """Read into one table on the local engine, the rows a check fails are named as the
    dask engine names them: by file, and by row within that file."""
    from regflow.tasks.validate import validate_dataset

    for name, row in (("part-005.csv", 2), ("part-017.csv", 4)):
        frame = pd.read_csv(csv_dir / name).astype({"x": object})
        frame.loc[row, "x"] = "twelve"
        frame.to_csv(csv_dir / name, index=False)
    with pytest.raises(InvalidInputError) as err:
        validate_dataset(read_table(str(csv_dir)), "y", ["x", "n"])
    found = [(Path(p.file or "").name, p.column, p.check, p.rows) for p in err.value.problems]
    assert found == [
        ("part-005.csv", "x", "coerce_dtype", [3]),
        ("part-017.csv", "x", "coerce_dtype", [5]),
    ]
    assert f"{csv_dir / 'part-017.csv'}: column 'x'" in str(err.value)


def test_int_and_float_columns_agree_and_order_does_not_matter(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2], "y": [1.0, 2.0]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"y": [3.5, 4.0], "x": [3.5, 4.0]}), tmp_path / "b.parquet")
    files = [describe_file(str(tmp_path / name)) for name in ("a.parquet", "b.parquet")]
    check_same_schema(files)
    frame = read_table(str(tmp_path)).frame
    assert list(frame.columns) == ["x", "y"] and frame["x"].tolist() == [1, 2, 3.5, 4]


def test_corrupt_partition_names_the_file(parquet_dir: Path) -> None:
    odd = parquet_dir / "part-031.parquet"
    odd.write_bytes(b"PAR1" + b"\x00" * 64)
    for read in (read_table, expand_then_describe):
        with pytest.raises(InvalidInputError) as err:
            read(str(parquet_dir))
        assert err.value.source == str(odd) and _problems(err) == {None: "parquet_format"}


def expand_then_describe(data: str) -> list[DatasetFile]:
    return [describe_file(path) for path in expand_dataset(data)]


def test_a_missing_listed_file_is_file_exists(parquet_dir: Path) -> None:
    missing = str(parquet_dir / "part-100.parquet")
    with pytest.raises(InvalidInputError) as err:
        read_table([*_parts(parquet_dir)[:3], missing], "weekly")
    assert err.value.source == missing and _problems(err) == {None: "file_exists"}


# ---------------------------------------------------------------------------------------
# Reading


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_multi_file_read_equals_the_concatenated_file(
    tmp_path: Path, whole: pd.DataFrame, fmt: str
) -> None:
    whole = whole.astype({"n": "float64"})
    whole.loc[whole.index[-1], "n"] = 2.5  # one partition's integer column holds a float
    folder = tmp_path / "parts"
    folder.mkdir()
    single = tmp_path / f"whole.{fmt}"
    for i, chunk in _chunks(whole):
        chunk = chunk.astype({"n": "int64"}) if i < N_PARTS - 1 else chunk
        if fmt == "csv":
            chunk.to_csv(folder / f"part-{i:03d}.csv", index=False)
        else:
            chunk.to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    if fmt == "csv":
        whole.to_csv(single, index=False)
    else:
        whole.to_parquet(single, index=False)
    loaded = read_table(str(folder), "weekly")
    expected = read_table(str(single)).frame
    pd.testing.assert_frame_equal(loaded.frame, expected)
    assert loaded.source == "weekly" and loaded.format == fmt
    assert loaded.n_bytes == sum(f.size for f in loaded.files)
    assert [f.rows for f in loaded.files] == [ROWS] * N_PARTS


def test_read_partition_is_ingest_of_that_file(csv_dir: Path, parquet_dir: Path) -> None:
    for path in (_parts(csv_dir, ".csv")[4], _parts(parquet_dir)[4]):
        pd.testing.assert_frame_equal(read_partition(path), read_table(path).frame)
        info, frame = load_partition(path)
        assert info == describe_file(path)
        pd.testing.assert_frame_equal(frame, read_table(path).frame)


def test_a_one_path_list_is_that_file(csv_dir: Path) -> None:
    path = _parts(csv_dir, ".csv")[0]
    assert read_table([path]).files == ()
    assert read_table([path]).sha256 == read_table(path).sha256


def test_partition_errors_are_ingest_errors(tmp_path: Path) -> None:
    bad = tmp_path / "ragged.csv"
    bad.write_text("x,y\n1,2\n3,4,5\n")
    with pytest.raises(InvalidInputError) as err:
        datasets.read_partition(str(bad))
    assert err.value.source == str(bad) and _problems(err) == {None: "csv_syntax"}


def test_more_failing_rows_than_shown_keep_their_total() -> None:
    from regflow.errors import Problem
    from regflow.schemas.frames import DatasetFile
    from regflow.tasks.validate import in_their_files

    files = [DatasetFile(f"f{i}.csv", 1, "0" * 64, 10, ("x",), ("object",)) for i in range(3)]
    shown = Problem(
        "coerce_dtype", "values are not numbers", None, "x", [3, 12, 30], ["a", "b", "c"], 57
    )
    split = in_their_files(InvalidInputError("data", [shown]), files).problems
    assert [(p.file, p.rows, p.values, p.count) for p in split] == [
        ("f0.csv", [3], ["a"], None),
        ("f1.csv", [2], ["b"], None),
        ("f2.csv", [10], ["c"], None),
    ]
    assert all(p.message.endswith("(57 rows in all, across the files)") for p in split)
    one_file = in_their_files(InvalidInputError("data", [shown]), files[:1])
    assert one_file.problems == [shown]
