"""The bad-input corpus: each case writes its own file, so the corpus lives in the tests.

A case names what a user would do wrong and how regflow must answer: the exit code, the check
and the column (None for file-level checks) that the message names.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

Writer = Callable[[Path], Path | str]  # a URL is a str


@dataclass(frozen=True)
class Case:
    id: str
    write: Writer
    check: str
    column: str | None
    target: str = "y"
    features: list[str] | None = None
    exit_code: int = 2
    also: list[str] = field(default_factory=list)  # more text the message must contain


def _text(name: str, content: str | bytes) -> Writer:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write


def _good_rows(n: int = 8) -> list[str]:
    return [f"{i},{2 * i + 0.5 * (i % 3)}" for i in range(1, n + 1)]


def _csv(name: str, header: str, rows: list[str]) -> Writer:
    return _text(name, "\n".join([header, *rows]) + "\n")


def _parquet(name: str, table: pa.Table) -> Writer:
    def write(folder: Path) -> Path:
        path = folder / name
        pq.write_table(table, path)
        return path

    return write


def _directory(folder: Path) -> Path:
    path = folder / "folder.csv"  # a directory with a data file's name, holding no data file
    path.mkdir()
    (path / "_SUCCESS").write_bytes(b"")
    return path


def _string_index_parquet(folder: Path) -> Path:
    # pandas stores a string index in the Parquet file; row numbers must still be positions.
    frame = pd.DataFrame(
        {"x": ["1", "2", "oops", "4", "5"], "y": [1.0, 2.0, 3.0, 4.5, 5.0]},
        index=list("abcde"),
    )
    path = folder / "indexed.parquet"
    frame.to_parquet(path)
    return path


def _few_rows_many_features(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(6, 6)), columns=[f"f{j}" for j in range(6)])
    frame["y"] = frame.sum(axis=1)
    path = folder / "wide-short.csv"
    frame.to_csv(path, index=False)
    return path


GOOD = _good_rows()

TRAIN_CASES = [
    Case("missing_target", _csv("a.csv", "x,y", GOOD), "column_present", "label", "label"),
    Case(
        "missing_feature",
        _csv("b.csv", "x,y", GOOD),
        "column_present",
        "w",
        features=["x", "w"],
    ),
    Case(
        "strings_in_numeric",
        _csv("c.csv", "x,y", [*GOOD[:3], "abc,7", *GOOD[3:]]),
        "coerce_dtype",
        "x",
        also=["row 4 (abc)"],
    ),
    Case("empty_cells", _csv("d.csv", "x,y", [*GOOD[:2], "3,", *GOOD[3:]]), "not_nullable", "y"),
    Case("nan", _csv("e.csv", "x,y", ["NaN,1", *GOOD]), "not_nullable", "x", also=["row 1"]),
    Case("plus_inf", _csv("f.csv", "x,y", [*GOOD, "inf,3"]), "finite", "x", also=["row 9"]),
    Case("minus_inf", _csv("g.csv", "x,y", [*GOOD, "3,-inf"]), "finite", "y", also=["-inf"]),
    Case("empty_file", _text("h.csv", b""), "not_empty", None),
    Case(
        "header_only",
        _text("i.csv", "x,y\n"),
        "at_least_3_rows",
        None,
        also=["found 0", "no data rows"],
    ),
    Case("two_rows", _csv("j.csv", "x,y", GOOD[:2]), "at_least_3_rows", None, also=["found 2"]),
    Case(
        "constant_feature",
        _csv("k.csv", "x,z,y", [f"{i},7,{2 * i + i % 3}" for i in range(1, 9)]),
        "not_constant",
        "z",
        features=["x", "z"],
    ),
    Case(
        "constant_target", _csv("l.csv", "x,y", [f"{i},5" for i in range(8)]), "not_constant", "y"
    ),
    Case(
        "duplicate_names_csv",
        _csv("m.csv", "x,x,y", [f"{r},1" for r in GOOD]),
        "unique_column_names",
        "x",
    ),
    # A UTF-8 byte-order mark (Excel's "CSV UTF-8") must not hide the duplicate name.
    Case(
        "duplicate_names_csv_bom",
        _text("m-bom.csv", b"\xef\xbb\xbfx,x,y\n" + "\n".join(f"{r},1" for r in GOOD).encode()),
        "unique_column_names",
        "x",
    ),
    Case(
        "duplicate_names_csv_bom_crlf",
        _text(
            "m-crlf.csv", b"\xef\xbb\xbfx,x,y\r\n" + "\r\n".join(f"{r},1" for r in GOOD).encode()
        ),
        "unique_column_names",
        "x",
    ),
    Case(
        "duplicate_names_parquet",
        _parquet("n.parquet", pa.table([[1.0, 2.0, 3.0]] * 3, names=["x", "x", "y"])),
        "unique_column_names",
        "x",
    ),
    Case(
        "not_utf8",
        _text("o.csv", "x,y\n1,2\n2,4\ncaf\u00e9,6\n".encode("latin-1")),
        "utf8",
        None,
        also=["line 4"],
    ),
    Case(
        "wrong_delimiter",
        _csv("p.csv", "x;y", [r.replace(",", ";") for r in GOOD]),
        "column_present",
        "y",
        also=["semicolon-separated"],
    ),
    Case("directory", _directory, "dataset_files", None, also=["no .csv or .parquet"]),
    Case(
        "glob_matches_nothing",
        lambda folder: f"{folder}/part-*.parquet",
        "dataset_files",
        None,
        also=["matches no file"],
    ),
    Case("missing_file", lambda folder: folder / "absent.csv", "file_exists", None),
    Case("unknown_url_scheme", lambda folder: "nosuch://host/data.csv", "url_scheme", None),
    Case("unsupported_extension", _text("q.xlsx", b"PK\x03\x04"), "file_format", None),
    Case(
        "nested_parquet",
        _parquet(
            "r.parquet",
            pa.table({"x": [[1.0, 2.0], [3.0], [4.0]], "y": [1.0, 2.0, 3.0]}),
        ),
        "flat_columns",
        "x",
    ),
    Case("not_parquet", _text("s.parquet", "x,y\n1,2\n"), "parquet_format", None),
    Case(
        "float32_overflow",
        _csv("t.csv", "x,y", [*GOOD, "1e39,3"]),
        "within_float32_range",
        "x",
        also=["1e+39"],
    ),
    Case(
        "target_as_feature",
        _csv("u.csv", "x,y", GOOD),
        "target_not_feature",
        "y",
        features=["x", "y"],
    ),
    Case(
        "ragged_rows",
        _csv("v.csv", "x,y", [*GOOD[:2], "3,6,9", *GOOD[2:]]),
        "csv_syntax",
        None,
        also=["line 4"],
    ),
    Case(
        "parquet_string_index",
        _string_index_parquet,
        "coerce_dtype",
        "x",
        also=["row 3 (oops)"],
    ),
    # Statistical, not malformed: more features than the F test has rows for (gate, exit 3).
    Case(
        "fewer_rows_than_features",
        _few_rows_many_features,
        "gate",
        None,
        exit_code=3,
        also=["too few rows for 6 features"],
    ),
]


def unused_port() -> int:
    """A loopback port nothing listens on (for a refused connection)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def other_device() -> str:
    """A device this machine lacks: cuda without CUDA, else mps (never on Linux)."""
    import torch

    return "cuda" if not torch.cuda.is_available() else "mps"


def line_data(n: int) -> pd.DataFrame:
    """y = 3x + 1 with a little noise: a relationship the gate passes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 3 * x + 1 + rng.normal(0, 0.1, n)})


# Checks this file cannot produce quickly through the CLI; each names the test that does.
NOT_PRODUCIBLE_HERE: dict[str, tuple[str, str]] = {
    "arrow_types": (
        "the Python API's in-memory tables only; no file the CLI reads has one",
        "tests/unit/test_in_memory_tables.py",
    ),
    "ServerUnavailable": (
        "needs a real Prefect server killed mid-run (minutes)",
        "tests/faults/test_server_killed.py",
    ),
    "AliasConflict": (
        "needs two writers racing for one alias; the CLI cannot be interleaved",
        "tests/model_registry/test_registry_aliases.py",
    ),
    "dask_address": (
        "waits out the 10 s connect timeout to an address nothing listens on",
        "tests/faults/test_dask_faults.py",
    ),
    "known_levels (predict)": (
        "needs a model trained with --categorical; the shared one here is numeric",
        "tests/flow/test_categorical.py",
    ),
}
