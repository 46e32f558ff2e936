"""regflow.io.csv_pieces: the same frame as pandas.read_csv, or None (the serial parser decides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regflow.io.csv_pieces as pieces


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pieces, "PIECE_BYTES", 4096)  # dozens of pieces from small files


def write(path: Path, header: str, lines: list[str], newline: str = "\n", end: str = "\n") -> str:
    path.write_bytes((header + newline + newline.join(lines) + end).encode())
    return str(path)


def numbers(rows: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        f"{a:.5f},{b},{c:.3e}"
        for a, b, c in zip(
            rng.normal(size=rows),
            rng.integers(-50, 50, size=rows),
            rng.uniform(size=rows),
            strict=True,
        )
    ]


def assert_same_as_pandas(path: str) -> pd.DataFrame:
    frame = pieces.read_csv_in_pieces(path, workers=2)
    assert frame is not None
    pd.testing.assert_frame_equal(frame, pd.read_csv(path))
    return frame


def test_numeric_file_matches_pandas(tmp_path: Path) -> None:
    frame = assert_same_as_pandas(write(tmp_path / "a.csv", "x,n,y", numbers(5000)))
    assert frame["n"].dtype == np.int64 and len(frame) == 5000


@pytest.mark.parametrize(
    ("newline", "end"),
    [("\r\n", "\r\n"), ("\n", ""), ("\n", "\n\n\n")],
    ids=["crlf", "no_final_newline", "trailing_blank"],
)
def test_line_ends_match_pandas(tmp_path: Path, newline: str, end: str) -> None:
    assert_same_as_pandas(write(tmp_path / "b.csv", "x,n,y", numbers(3000), newline, end))


def test_blank_lines_inside_match_pandas(tmp_path: Path) -> None:
    lines = numbers(4000)
    for at in (10, 700, 701, 2500):
        lines[at] = ""
    assert_same_as_pandas(write(tmp_path / "c.csv", "x,n,y", lines))


def test_integers_then_decimals_and_missing_values_widen_like_pandas(tmp_path: Path) -> None:
    lines = [f"{i},{i % 7},{i * 2}" for i in range(6000)]
    lines[5500] = "5500,0.5,11000"  # a decimal in a late piece
    lines[4000] = "4000,3,"  # a missing value in another
    frame = assert_same_as_pandas(write(tmp_path / "d.csv", "a,b,c", lines))
    assert frame["b"].dtype == np.float64 and frame["c"].dtype == np.float64
    assert frame["a"].dtype == np.int64


def test_quoted_header_names_are_fine(tmp_path: Path) -> None:
    assert_same_as_pandas(write(tmp_path / "e.csv", '"x","n","y"', numbers(3000)))


@pytest.mark.parametrize(
    "edit",
    ['1.0,"2",3.0', "1.0,abc,3.0", "1.0,2,3.0,4.0", "1.0,True,3.0"],
    ids=["quotes", "text", "extra_field", "boolean"],
)
def test_declines_what_only_the_serial_parser_reports_right(tmp_path: Path, edit: str) -> None:
    lines = numbers(4000)
    lines[3000] = edit
    assert pieces.read_csv_in_pieces(write(tmp_path / "f.csv", "x,n,y", lines), workers=2) is None


def test_small_files_and_one_worker_are_left_to_pandas(tmp_path: Path) -> None:
    path = write(tmp_path / "g.csv", "x,n,y", numbers(3000))
    assert pieces.read_csv_in_pieces(path, workers=1) is None
    tiny = write(tmp_path / "h.csv", "x,n,y", numbers(10))
    assert pieces.read_csv_in_pieces(tiny, workers=2) is None


def test_a_poor_row_estimate_grows_the_arrays(tmp_path: Path) -> None:
    # Long rows first, short ones after: the first piece predicts far too few rows.
    lines = [f"{i}.123456789012,{i},{i}.98765432109876" for i in range(300)]
    lines += [f"{i % 10},{i % 3},{i % 5}" for i in range(40_000)]
    assert_same_as_pandas(write(tmp_path / "i.csv", "x,n,y", lines))


def test_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + Path(write(path, "x,n,y", numbers(3000))).read_bytes())
    frame = pieces.read_csv_in_pieces(str(path), workers=2)
    assert frame is not None and list(frame.columns) == ["x", "n", "y"]
    pd.testing.assert_frame_equal(frame, pd.read_csv(path, encoding="utf-8-sig"))


@pytest.mark.parametrize("quoted", [False, True], ids=["pieces", "serial_fallback"])
def test_ingest_reads_the_same_frame_either_way(
    tmp_path: Path, quoted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import regflow.tasks.ingest as ingest

    monkeypatch.setattr(ingest, "PARSE_BY_PATH_MAX_BYTES", 0)  # as if the file were large
    lines = numbers(5000)
    if quoted:
        lines[4500] = '0.5,"7",0.25'
    path = write(tmp_path / "j.csv", "x,n,y", lines)
    loaded = ingest.read_table(path)
    pd.testing.assert_frame_equal(loaded.frame, pd.read_csv(path))
    declined = pieces.read_csv_in_pieces(path, workers=2) is None
    assert declined == quoted
