"""Hostile inputs to the command line end in 0, 2 or 3: never a fault, never leftovers.

Arbitrary bytes as a CSV or Parquet file, odd but well-formed CSVs (duplicate headers, BOMs,
quotes, formula-looking cells, NaN/inf, empty lines), and arbitrary text as column names, model
names and registry references. Whatever happens, the exit code is 0, 2 or 3 (1 would be a
fault regflow did not expect), stderr holds no traceback, a failure is exactly one
`regflow: ...` line (an invalid-input failure may list its problems indented below it), and a
failed run leaves no run folder, no `.tmp-*` folder and no new registry version behind.

The CLI runs in-process (typer's CliRunner against `regflow.cli.app`, the flow against the
session's Prefect test server): a subprocess per example would cost seconds each. Hypothesis
is derandomized so CI sees the same examples every time.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_checks import registered_versions, run_folders
from typer.testing import CliRunner

from regflow.cli import app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("prefect_harness"),
    pytest.mark.filterwarnings("ignore:Glyph .* missing from font"),  # odd names in plots
]

# A run costs 1-5 s even in-process: a few examples per property keep the file near 2 minutes.
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EXPECTED_CODES = {0, 2, 3}


class Records(logging.Handler):
    """Every log record emitted while a command runs (Prefect's console writes them to stderr)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        formatter = logging.Formatter()
        return [
            f"{r.name}: {formatter.format(r)}"
            for r in self.records
            if r.exc_info or "Traceback" in r.getMessage()
        ]


@pytest.fixture(scope="module", autouse=True)
def prefect_logs_to_the_real_stderr(prefect_harness: str) -> None:
    """Bind Prefect's console handlers now, not to the first CliRunner's stream (closed later)."""
    from prefect.logging.configuration import setup_logging

    setup_logging(incremental=False)


def invoke(args: list[str]) -> Result:
    """Run the CLI in-process; a log record with a traceback fails the run like one on stderr."""
    handler = Records()
    loggers = [logging.getLogger(), logging.getLogger("prefect")]
    loggers += [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        result = CliRunner().invoke(app, args, catch_exceptions=True)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    found = sorted(set(handler.tracebacks()))
    assert not found, f"args={args!r}: logged a traceback:\n" + "\n".join(found)
    return result


def leftovers(out: Path) -> list[Path]:
    """Run folders and hidden `.tmp-*` folders anywhere under `out`."""
    if not out.exists():
        return []
    return [*run_folders(out), *(p for p in out.rglob(".tmp-*"))]


def check_outcome(
    result: Result, args: list[str], out: Path | None, registry: Path, before: int
) -> None:
    """The contract of docs/errors.md for one finished command."""
    shown = f"args={args!r}\nexit={result.exit_code}\nstderr={result.stderr!r}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"unexpected exception\n{shown}\n{trace}")
    assert result.exit_code in EXPECTED_CODES, shown
    assert "Traceback" not in result.stderr, shown
    assert "Traceback" not in result.stdout, shown
    if result.exit_code == 0:
        return
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, shown
    assert lines[0].startswith("regflow: "), shown
    # Only an invalid-input failure may add lines, and they are its indented problem list.
    assert all(line.startswith((" ", "\t")) for line in lines[1:]), shown
    if out is not None:
        assert leftovers(out) == [], shown
    assert registered_versions(registry) == before, shown


def numeric_columns(names: list[str], rows: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """Numeric data for `names`: the last column is a noisy linear function of the others."""
    rng = np.random.default_rng(seed)
    data = {}
    for i, name in enumerate(names):
        data[name] = rng.normal(size=rows) if i < len(names) - 1 else None
    xs = [v for v in data.values() if v is not None]
    y = sum(xs, np.zeros(rows)) + rng.normal(scale=0.1, size=rows)
    data[names[-1]] = y
    return data


@pytest.fixture()
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="regflow-hostile-") as folder:
        yield Path(folder)


def fresh(base: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=base))


def train_and_check(data: Path, extra: list[str]) -> Result:
    out, registry = data.parent / "runs", data.parent / "registry"
    args = ["train", str(data), "--out", str(out), "--registry", str(registry), *extra]
    before = registered_versions(registry)
    result = invoke(args)
    check_outcome(result, args, out, registry, before)
    return result


# 1. Arbitrary bytes, and odd but structured CSVs -------------------------------------------


@settings(SETTINGS, max_examples=10)
@given(
    content=st.binary(max_size=300),
    kind=st.sampled_from([".csv", ".parquet", "PAR1-framed .parquet"]),
)
def test_arbitrary_bytes_as_data(content: bytes, kind: str, workdir: Path) -> None:
    folder = fresh(workdir)
    data = folder / f"data{kind.split()[-1]}"
    # Parquet's magic at both ends gets garbage past the first sniff, into the footer parser.
    data.write_bytes(b"PAR1" + content + b"PAR1" if kind.startswith("PAR1") else content)
    train_and_check(data, ["--target", "y"])


HEADERS = st.sampled_from(
    ["y", "x", "x", "Y", " y", "y ", '"y"', "=cmd|' /C calc'!A0", "@SUM(1)", "", "x;y", "é"]
)
CELLS = st.one_of(
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "1e309", "", '"1"', "=1+2", "+1", "-1", "@x", "1,5", "NULL"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(min_value=-100, max_value=100).map(lambda v: f"{v:.6g}"),
)


@st.composite
def odd_csvs(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(HEADERS, min_size=1, max_size=4))
    if draw(st.booleans()):
        header.append("y")
    rows = draw(st.lists(st.lists(CELLS, min_size=len(header), max_size=len(header)), max_size=12))
    buffer = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    writer = csv.writer(buffer, quoting=quoting, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if draw(st.integers(0, 5)) == 0:
            buffer.write(draw(st.sampled_from(["\n", "\r\n", ",,\n", " \n"])))
    text = buffer.getvalue()
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    bom = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf", b"\xff\xfe"]))
    return bom + text.encode("utf-8")


@SETTINGS
@given(content=odd_csvs())
def test_odd_csvs(content: bytes, workdir: Path) -> None:
    folder = fresh(workdir)
    data = folder / "odd.csv"
    data.write_bytes(content)
    train_and_check(data, ["--target", "y"])


# 2. Arbitrary text as column names, model names and references -----------------------------

NAMES = st.text(max_size=12)


def write_table(path: Path, data: dict[str, np.ndarray]) -> None:
    if path.suffix == ".parquet":
        pq.write_table(pa.table(data), path)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(list(data))
        writer.writerows(zip(*(v.tolist() for v in data.values()), strict=True))
        path.write_text(buffer.getvalue(), encoding="utf-8")


@settings(SETTINGS, max_examples=6)
@given(
    names=st.lists(NAMES, min_size=2, max_size=3, unique=True),
    target_pick=st.integers(0, 2),
    use_features=st.booleans(),
    suffix=st.sampled_from([".csv", ".parquet"]),
)
def test_arbitrary_column_names(
    names: list[str], target_pick: int, use_features: bool, suffix: str, workdir: Path
) -> None:
    folder = fresh(workdir)
    data = folder / f"cols{suffix}"
    write_table(data, numeric_columns(names))
    target = names[target_pick % len(names)]
    extra = ["--target", target]
    if use_features:
        extra += ["--features", ",".join(n for n in names if n != target)]
    train_and_check(data, extra)


@SETTINGS
@given(model=NAMES)
def test_arbitrary_model_names(model: str, workdir: Path) -> None:
    folder = fresh(workdir)
    data = folder / "named.csv"
    write_table(data, numeric_columns(["x", "y"]))
    train_and_check(data, ["--target", "y", "--model", model])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A registry holding one model, `base`, and data it can score."""
    folder = tmp_path_factory.mktemp("trained")
    data, registry = folder / "base.csv", folder / "registry"
    write_table(data, numeric_columns(["x", "y"]))
    args = ["train", str(data), "--target", "y", "--model", "base"]
    result = invoke([*args, "--out", str(folder / "runs"), "--registry", str(registry)])
    assert result.exit_code == 0, result.stderr
    return data, registry


REFS = st.one_of(
    NAMES,
    st.builds(lambda s, t: f"base{s}{t}", st.sampled_from(["", ":", "@", ":@", "@:"]), NAMES),
    st.sampled_from(["base", "base:1", "base:0", "base:99999999999999999999", "base@champion"]),
)


@SETTINGS
@given(ref=REFS)
def test_arbitrary_references_in_models_show(ref: str, trained: tuple[Path, Path]) -> None:
    _, registry = trained
    before = registered_versions(registry)
    args = ["models", "show", ref, "--registry", str(registry)]
    check_outcome(invoke(args), args, None, registry, before)


@SETTINGS
@given(ref=REFS)
def test_arbitrary_references_in_predict(
    ref: str, trained: tuple[Path, Path], workdir: Path
) -> None:
    data, registry = trained
    out = fresh(workdir) / "scores.csv"
    before = registered_versions(registry)
    args = ["predict", str(data), "--model", ref, "--out", str(out), "--registry", str(registry)]
    result = invoke(args)
    check_outcome(result, args, None, registry, before)
    if result.exit_code != 0:
        assert not out.exists(), f"{args!r}: a failed prediction left {out}"
