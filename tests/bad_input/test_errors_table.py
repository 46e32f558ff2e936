"""docs/errors.md's table of checks and states, each produced through the command line.

Every backticked name in the table's first column must have a producer here (or a reason it
cannot be produced in this file, naming the test that covers it): a row added to the doc
without code, or a check renamed in the code, fails this test. Each producer runs the real
`regflow` app in-process (Typer's CliRunner, against the session's Prefect harness) and the
test asserts the table's exit code, the name in the --json line and no traceback.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from bad_files import (
    NOT_PRODUCIBLE_HERE,
    TRAIN_CASES,
    Case,
    line_data,
    other_device,
    unused_port,
)
from run_checks import REPO, last_json
from typer.testing import CliRunner

import regflow.registry.errors  # noqa: F401 - registers the registry's error classes
from regflow.cli import app
from regflow.errors import RegflowError
from regflow.flows.training import train
from regflow.registry import location as reg_location

# About 80 s of producers after the harness starts (2.5 min in all on a busy 2-core machine).
pytestmark = pytest.mark.slow

ERRORS_MD = REPO / "docs" / "errors.md"
SEED = REPO / "data" / "seed.csv"
runner = CliRunner()


@dataclass(frozen=True)
class CliResult:
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


# Documented checks whose code is being written now: reported as xfail until wired.
IN_PROGRESS: dict[str, str] = {}

# Rows whose documented behaviour the code does not have yet: strict xfail, so fixing either
# the doc or the code makes this test fail until the entry is removed.
DOC_MISMATCH: dict[str, str] = {}


# ---------------------------------------------------------------------------------------
# The table


def _cells(line: str) -> list[str]:
    """The cells of one markdown table row; `\\|` inside a cell is not a separator."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def documented_checks() -> dict[str, int]:
    """Every backticked name in the first column of 'Checks and states', with its exit code.

    A row for one command only ("`numeric_dtype` (predict)") keys as "numeric_dtype (predict)",
    so a check documented for training and for predict needs a producer for each.
    """
    text = ERRORS_MD.read_text(encoding="utf-8")
    section = text.split("## Checks and states", 1)[1].split("\n## ", 1)[0]
    found: dict[str, int] = {}
    rows = [line for line in section.splitlines() if line.startswith("|")]
    for line in rows[2:]:  # after the header and its separator
        cells = _cells(line)
        qualifier = re.search(r"\((\w+)\)", re.sub(r"`[^`]*`", "", cells[0]))
        for name in re.findall(r"`([^`]+)`", cells[0]):
            key = f"{name} ({qualifier.group(1)})" if qualifier else name
            found[key] = int(cells[2])
    return found


def check_name(key: str) -> str:
    """ "numeric_dtype (predict)" -> "numeric_dtype"."""
    return key.split(" ", 1)[0]


DOCUMENTED = documented_checks()


# ---------------------------------------------------------------------------------------
# Running the CLI


def cli(*args: str) -> CliResult:
    """`regflow ARGS --json` in-process (the harness's API is this process's setting)."""
    full = [*args, "--json"]
    result = runner.invoke(app, full, env={"REGFLOW_DEBUG": ""})
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    return CliResult(full, result.exit_code, result.stdout, result.stderr, exception)


def _state_names() -> dict[str, str]:
    """Error class name (the JSON's `error`) -> the state name the table uses."""
    names: dict[str, str] = {}
    todo: list[type[RegflowError]] = [RegflowError]
    while todo:
        cls = todo.pop()
        names[cls.__name__] = cls.state_name
        todo += cls.__subclasses__()
    return names


STATE_NAMES = _state_names()


def reported_names(payload: dict[str, Any]) -> set[str]:
    """What a --json line names: its problems' checks, its error and that error's state."""
    names = {str(p.get("check")) for p in payload.get("problems") or []}
    names |= {str(p.get("check")) for p in payload.get("leftovers") or []}
    error = payload.get("error")
    if error:
        names |= {error, STATE_NAMES.get(error, error)}
    if payload.get("check"):
        names.add(payload["check"])
    return names


# ---------------------------------------------------------------------------------------
# Shared inputs: one trained model, reused by every predict and models producer


@dataclass(frozen=True)
class World:
    folder: Path
    registry: Path  # holds houses:1 (features a, b; target y), champion
    ref: str

    def copy_registry(self, name: str) -> Path:
        """A private copy of the registry, for producers that damage or change it."""
        copy = self.folder / name
        if not copy.exists():
            shutil.copytree(self.registry, copy)
        return copy

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path


@pytest.fixture(scope="module")
def world(prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("errors-table")
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    frame["y"] = 2 * frame.a - frame.b + rng.normal(0, 0.1, 40)
    data = folder / "houses.csv"
    frame.to_csv(data, index=False)
    registry = folder / "registry"
    state = train(data=str(data), target="y", out=str(folder / "runs"), registry=str(registry))
    assert state.model_ref == "houses:1"
    return World(folder, registry, "houses:1")


@pytest.fixture(scope="module")
def forbidding_server() -> Iterator[str]:
    """An HTTP server that answers 403 to everything; yields its base URL."""

    class Forbidden(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self._answer()

        def do_HEAD(self) -> None:
            self._answer()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Context:
    world: World
    tmp: Path  # this test's own folder
    forbidding_url: str
    monkeypatch: pytest.MonkeyPatch

    def train(self, data: Path | str, *args: str, target: str = "y") -> CliResult:
        registry = self.tmp / "train-registry"
        out = self.tmp / "train-runs"
        return cli(
            "train",
            str(data),
            "--target",
            target,
            *args,
            "--registry",
            str(registry),
            "--out",
            str(out),
        )

    def predict(
        self, data: Path, *args: str, registry: Path | None = None, out: str = "scores.csv"
    ) -> CliResult:
        where = registry or self.world.registry
        return cli(
            "predict",
            str(data),
            "--model",
            self.world.ref,
            "--registry",
            str(where),
            "--out",
            str(self.tmp / out),
            *args,
        )

    def models(self, *args: str, registry: Path | None = None) -> CliResult:
        return cli("models", *args, "--registry", str(registry or self.world.registry))

    def good_scoring_file(self) -> Path:
        return self.world.file("good-score.csv", "a,b\n1,2\n2,3\n")


Producer = Callable[[Context], CliResult]


# ---------------------------------------------------------------------------------------
# Producers


def _from_case(case: Case) -> Producer:
    """A bad_files.py training case through the CLI."""

    def produce(ctx: Context) -> CliResult:
        data = case.write(ctx.tmp)
        features = ["--features", ",".join(case.features)] if case.features else []
        return ctx.train(data, *features, target=case.target)

    return produce


def _csv(ctx: Context, name: str, frame: pd.DataFrame) -> Path:
    path = ctx.tmp / name
    frame.to_csv(path, index=False)
    return path


def _weak(ctx: Context) -> CliResult:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": rng.normal(size=60)})
    return ctx.train(_csv(ctx, "noise.csv", frame))


def _quarantine_too_many(ctx: Context) -> CliResult:
    rows = ["x,y", *[f"{i},{2 * i + i % 3}" for i in range(1, 20)], "oops,3"]
    data = ctx.tmp / "dirty.csv"
    data.write_text("\n".join(rows) + "\n")
    return ctx.train(data, "--on-invalid", "quarantine")


def _integrity(ctx: Context) -> CliResult:
    registry = ctx.world.copy_registry("tampered")
    stored = sorted(
        p for p in (registry / "store").rglob("*") if p.is_file() and p.suffix != ".json"
    )
    assert stored, f"no stored files under {registry / 'store'}"
    with stored[0].open("ab") as handle:
        handle.write(b"tampered")
    return ctx.predict(ctx.good_scoring_file(), registry=registry)


def _orphan(ctx: Context) -> CliResult:
    registry = ctx.world.copy_registry("orphaned")
    versions = [p for p in (registry / "store").rglob("1") if p.is_dir()]
    assert versions, f"no version folder under {registry / 'store'}"
    shutil.copytree(versions[0], versions[0].with_name("2"), dirs_exist_ok=True)
    return ctx.models("verify", registry=registry)


def _alias_in_use(ctx: Context) -> CliResult:
    registry = ctx.world.copy_registry("aliased")
    promoted = ctx.models("promote", ctx.world.ref, "--alias", "keep", registry=registry)
    assert promoted.exit_code == 0, promoted
    return ctx.models("delete", ctx.world.ref, registry=registry)


def _read_only(ctx: Context) -> CliResult:
    """As if this process could not write the registry (what a non-root user sees)."""
    registry = ctx.world.copy_registry("read-only")
    ctx.monkeypatch.setattr(reg_location, "is_read_only", lambda _where: True)
    return ctx.models("gc", registry=registry)


def _missing_extra(ctx: Context) -> CliResult:
    # None in sys.modules is how Python itself reports a module that cannot be imported.
    ctx.monkeypatch.setitem(sys.modules, "onnx", None)
    return ctx.models("export", ctx.world.ref, "--format", "onnx", "--out", str(ctx.tmp / "m.onnx"))


def _newer_schema(ctx: Context) -> CliResult:
    registry = ctx.world.copy_registry("newer-schema")  # as a newer regflow stamped it
    with sqlite3.connect(registry / "index.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'f000_from_a_newer_regflow'")
    return ctx.models("list", registry=registry)


def _boolean_feature(ctx: Context) -> CliResult:
    flags = ["true", "false"] * 4
    rows = ["x,b,y", *[f"{i},{flags[i - 1]},{2 * i + i % 3}" for i in range(1, 9)]]
    data = ctx.tmp / "booleans.csv"
    data.write_text("\n".join(rows) + "\n")
    return ctx.train(data, "--features", "x,b")


def _reserved_target(ctx: Context) -> CliResult:
    rows = ["x,predicted", *[f"{i},{2 * i + i % 3}" for i in range(1, 9)]]
    data = ctx.tmp / "reserved.csv"
    data.write_text("\n".join(rows) + "\n")
    return ctx.train(data, target="predicted")


def _categorical(ctx: Context, city: list[str], *args: str, extra: str = "") -> CliResult:
    """A training file with a text column `city` (and `extra` columns), --categorical city."""
    rows = [f"x,city{extra and ',' + extra},y"]
    rows += [f"{i},{c}{extra and ',1'},{2 * i + i % 3}" for i, c in enumerate(city, 1)]
    data = ctx.tmp / "cities.csv"
    data.write_text("\n".join(rows) + "\n")
    return ctx.train(data, "--categorical", "city", *args)


def _partitions(ctx: Context, odd: Callable[[Path], None]) -> CliResult:
    """Three good CSV partitions in a folder, then `odd` writes one more that disagrees."""
    folder = ctx.tmp / "parts"
    folder.mkdir()
    for i in range(3):
        _csv(ctx, f"parts/part-{i}.csv", line_data(10 + i))
    odd(folder)
    return ctx.train(folder)


def _renamed_partition(folder: Path) -> None:
    line_data(8).rename(columns={"x": "z"}).to_csv(folder / "part-3.csv", index=False)


def _parquet_partition(folder: Path) -> None:
    line_data(8).to_parquet(folder / "part-3.parquet", index=False)


def _data_producers() -> dict[str, Producer]:
    """The first bad_files.py case for each check it has (exit 2 only; `gate` is not a row)."""
    found: dict[str, Producer] = {}
    for case in TRAIN_CASES:
        if case.exit_code == 2 and case.check not in found:
            found[case.check] = _from_case(case)
    return found


PRODUCERS: dict[str, Producer] = {
    **_data_producers(),
    "url_scheme": lambda ctx: ctx.train("nosuch://host/data.csv"),
    "remote_access": lambda ctx: ctx.train(f"{ctx.forbidding_url}/data.csv"),
    "RemoteReadFailed": lambda ctx: ctx.train(f"http://127.0.0.1:{unused_port()}/data.csv"),
    "unique_features": lambda ctx: ctx.train(SEED, "--features", "x,x"),
    "features_given": lambda ctx: ctx.train(SEED, "--features", ","),
    "numeric_features": lambda ctx: ctx.train(
        _csv(ctx, "text.csv", pd.DataFrame({"s": list("abcdef"), "y": range(6)}))
    ),
    "max_invalid_fraction": _quarantine_too_many,
    "same_schema": lambda ctx: _partitions(ctx, _renamed_partition),
    "same_format": lambda ctx: _partitions(ctx, _parquet_partition),
    "device_available": lambda ctx: ctx.train(SEED, "--device", other_device()),
    "model_name": lambda ctx: ctx.train(SEED, "--model", "bad name!"),
    "usage": lambda ctx: ctx.train(SEED, "--lr", "-1"),
    "WeakCorrelation": _weak,
    "TrainingDiverged": lambda ctx: ctx.train(SEED, "--optimizer", "sgd", "--lr", "1e6"),
    "TrainingDidNotConverge": lambda ctx: ctx.train(
        _csv(ctx, "line.csv", line_data(50)), "--optimizer", "adam", "--lr", "1e-3", "--epochs", "2"
    ),
    "numeric_dtype": _boolean_feature,
    "max_levels": lambda ctx: _categorical(ctx, list("abcdef"), "--max-levels", "5"),
    "at_least_2_levels": lambda ctx: _categorical(ctx, ["Paris"] * 6),
    "indicator_name": lambda ctx: _categorical(ctx, ["a", "b"] * 3, extra="city=b"),
    "reserved_column": _reserved_target,
    "registry_read_only": _read_only,
    "SchemaVersion": _newer_schema,
    "column_in_dataframe (predict)": lambda ctx: ctx.predict(
        ctx.world.file("p1.csv", "a,c\n1,2\n")
    ),
    "numeric_dtype (predict)": lambda ctx: ctx.predict(ctx.world.file("p2.csv", "a,b\ntrue,2\n")),
    "reserved_column (predict)": lambda ctx: ctx.predict(
        ctx.world.file("p3.csv", "a,b,predicted\n1,2,0\n")
    ),
    "output_format (predict)": lambda ctx: ctx.predict(ctx.good_scoring_file(), out="scores.txt"),
    "output_path": lambda ctx: cli(
        "predict",
        str(ctx.good_scoring_file()),
        "--model",
        ctx.world.ref,
        "--registry",
        str(ctx.world.registry),
        "--out",
        str(ctx.world.registry / "store" / "x.csv"),
    ),
    "NotFound": lambda ctx: ctx.models("show", "houses:7"),
    "InvalidReference": lambda ctx: ctx.models("show", "houses:x"),
    "IntegrityError": _integrity,
    "orphan_folder (verify)": _orphan,
    "AliasInUse": _alias_in_use,
    "MissingDependency": _missing_extra,
}


# ---------------------------------------------------------------------------------------
# Tests


def test_every_documented_check_has_a_producer() -> None:
    assert len(DOCUMENTED) >= 30, f"parsed too few rows from {ERRORS_MD}: {sorted(DOCUMENTED)}"
    missing = set(DOCUMENTED) - set(PRODUCERS) - set(NOT_PRODUCIBLE_HERE) - set(IN_PROGRESS)
    assert not missing, f"documented in docs/errors.md but never produced here: {missing}"
    excused = (set(NOT_PRODUCIBLE_HERE) | set(IN_PROGRESS) | set(DOC_MISMATCH)) - set(DOCUMENTED)
    assert not excused, f"excused but not in docs/errors.md (stale entries): {excused}"


@pytest.mark.parametrize("check", sorted(NOT_PRODUCIBLE_HERE))
def test_checks_not_produced_here_are_covered_elsewhere(check: str) -> None:
    _, covered_by = NOT_PRODUCIBLE_HERE[check]
    path = REPO / covered_by
    assert path.is_file(), f"{check}: {covered_by} does not exist"
    assert check in path.read_text(encoding="utf-8"), f"{covered_by} never mentions {check}"


def _params() -> list[Any]:
    marks = {check: pytest.mark.xfail(reason=why) for check, why in IN_PROGRESS.items()}
    marks |= {
        check: pytest.mark.xfail(reason=why, strict=True) for check, why in DOC_MISMATCH.items()
    }
    return [
        pytest.param(check, marks=marks[check]) if check in marks else check
        for check in sorted(set(DOCUMENTED) - set(NOT_PRODUCIBLE_HERE))
    ]


@pytest.mark.parametrize("check", _params())
def test_documented_check_is_produced(
    check: str,
    world: World,
    forbidding_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    produce = PRODUCERS.get(check)
    assert produce is not None, f"no producer for documented check {check}"
    done = produce(Context(world, tmp_path, forbidding_server, monkeypatch))
    context = f"regflow {' '.join(done.args)}\nstdout: {done.stdout[-2000:]}"
    context += f"\nstderr: {done.stderr[-3000:]}"
    assert done.exception is None, f"{context}\nexception: {done.exception!r}"
    assert "Traceback" not in done.stderr, context
    assert done.exit_code == DOCUMENTED[check], context
    payload = last_json(done.stdout)
    names = reported_names(payload)
    assert check_name(check) in names, f"{check_name(check)} not in {names}\n{context}"
