"""Input errors a file's name and header decide end the command before Prefect starts: the same
message, check and exit code as the flow gives, with no server (PREFECT_API_URL points at a
port where nothing listens, so reaching Prefect would be a connection error, exit 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from regflow.cli.preflight import check_data, check_train, csv_columns
from regflow.errors import InvalidInputError
from regflow.registry import NotFoundError
from regflow.schemas.params import DataParams
from regflow.tasks.ingest import read_table
from regflow.tasks.validate import resolve_columns

REPO = Path(__file__).resolve().parents[2]
CLOSED_PORT_API = "http://127.0.0.1:9/api"  # port 9 (discard): nothing answers there
# Runs the CLI in-process, then says whether Prefect or torch were ever imported.
PROBE = (
    "import sys\n"
    "from regflow.cli import main\n"
    "sys.argv = ['regflow', *sys.argv[1:]]\n"
    "try:\n    main()\n"
    "except SystemExit as done:\n"
    "    heavy = sorted(m for m in ('prefect', 'torch') if m in sys.modules)\n"
    "    print('imported:', heavy, file=sys.stderr)\n"
    "    raise\n"
)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": CLOSED_PORT_API}
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def flow_error(
    path: Path, target: str, features: list[str] | None, categorical: list[str] | None
) -> InvalidInputError:
    """The error today's ingest and validate steps raise for this file (no Prefect needed)."""
    with pytest.raises(InvalidInputError) as raised:
        loaded = read_table(str(path))
        resolve_columns(loaded.frame, target, features, loaded.source, categorical)
    return raised.value


def preflight_error(
    path: Path, target: str, features: list[str] | None, categorical: list[str] | None
) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as raised:
        check_train(
            DataParams(path=str(path), target=target, features=features, categorical=categorical)
        )
    return raised.value


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ok.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfx,y\n1,2\n2,4\n3,6\n")
    (tmp_path / "semi.csv").write_text("x;y\n1;2\n2;4\n")
    (tmp_path / "reserved.csv").write_text("x,predicted\n1,2\n2,4\n")
    (tmp_path / "folder.csv").mkdir()
    for folder in ("parts", "mixed"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    (tmp_path / "parts" / "b.csv").write_text("x,y\n4,8\n")
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_parquet(tmp_path / "mixed" / "b.parquet")
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 5.0]}).to_parquet(
        tmp_path / "t.parquet", index=False
    )
    return tmp_path


CASES = [
    ("nope.csv", "y", None, None),
    ("folder.csv", "y", None, None),
    ("ok.txt", "y", None, None),
    ("ok.csv", "z", ["x", "q"], None),
    ("ok.csv", "y", ["x", "y", "x"], None),
    ("ok.csv", "y", [], None),
    ("ok.csv", "y", None, ["y", "c", "c"]),
    ("bom.csv", "z", None, None),
    ("semi.csv", "y", None, None),
    ("reserved.csv", "predicted", ["x"], None),
    ("t.parquet", "y", ["b"], None),
    # Multi-file datasets: the first file's header, a glob matching nothing, mixed formats.
    ("parts", "z", None, None),
    ("parts/*.csv", "y", ["q"], None),
    ("nothing-*.csv", "y", None, None),
    ("mixed", "y", None, None),
]


@pytest.mark.parametrize(("name", "target", "features", "categorical"), CASES)
def test_preflight_raises_what_the_flow_steps_raise(
    files: Path,
    name: str,
    target: str,
    features: list[str] | None,
    categorical: list[str] | None,
) -> None:
    if name == "ok.txt":
        (files / name).write_text("x,y\n1,2\n")
    expected = flow_error(files / name, target, features, categorical)
    got = preflight_error(files / name, target, features, categorical)
    assert str(got) == str(expected)
    assert got.to_dict() == expected.to_dict()


def test_a_good_header_passes_and_unsure_headers_are_left_to_the_flow(files: Path) -> None:
    check_train(DataParams(path=str(files / "bom.csv"), target="y", features=["x"]))
    check_train(DataParams(path=str(files / "t.parquet"), target="y"))
    check_train(DataParams(path=str(files / "parts"), target="y"))
    # pandas renames empty and duplicate names; a quoted name may span lines; ingest reports
    # an empty file and bad UTF-8 itself.
    for text in (b"x,,y\n", b"x,x,y\n", b'"a\nb",y\n1,2\n', b"", b"\xef\xbb\xbf\n", b"\xff,y\n"):
        path = files / "unsure.csv"
        path.write_bytes(text)
        assert csv_columns(str(path)) is None, text
        check_train(DataParams(path=str(path), target="nope"))  # no error: the flow decides
    # A URL: only its extension is checked, no network read.
    check_train(DataParams(path="http://127.0.0.1:9/data.csv", target="nope"))
    with pytest.raises(InvalidInputError, match="file_format"):
        check_train(DataParams(path="http://127.0.0.1:9/data.txt", target="y"))


def test_data_name_renames_the_file_in_errors(files: Path) -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_data(str(files / "nope.csv"), "my data")
    assert raised.value.source == "my data"
    assert raised.value.problems[0].file == "my data"
    with pytest.raises(InvalidInputError) as raised:
        check_train(DataParams(path=str(files / "ok.csv"), name="my data", target="z"))
    assert str(raised.value).startswith("my data: invalid input")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads all")
def test_an_unreadable_file_fails_before_the_flow(files: Path) -> None:
    path = files / "ok.csv"
    path.chmod(0)
    try:
        with pytest.raises(PermissionError):
            check_data(str(path))
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "nope.csv", "--target", "y"],
            "regflow: nope.csv: invalid input (1 problem)\n"
            "  - file: check 'file_exists' failed: no such file\n"
            "  nothing was published or registered: no run folder, no new version\n",
        ),
        (
            ["train", "semi.csv", "--target", "y"],
            "regflow: semi.csv: invalid input (1 problem)\n"
            "  - column 'y': check 'column_present' failed: column not found; the file has "
            "'x;y'; the header is one column containing ';': is the file semicolon-separated? "
            "regflow reads comma-separated CSV\n"
            "  nothing was published or registered: no run folder, no new version\n",
        ),
    ],
)
def test_cli_reports_input_errors_without_prefect(
    files: Path, args: list[str], message: str
) -> None:
    done = run_cli([*args, "--json"], files)
    assert done.returncode == 2, done.stderr
    assert done.stderr == message + "imported: []\n"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "invalid"
    assert result["flow_run_id"] is None and result["registered"] is False
    assert result["problems"][0]["check"] in {"file_exists", "column_present"}


def test_predict_reports_a_missing_registry_and_model_without_prefect(
    files: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-registry"
    done = run_cli(["predict", "ok.csv", "--registry", str(missing), "--json"], files)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"regflow: no registry at {missing} (no index.db): register a model first, or pass "
        "--registry / set REGFLOW_REGISTRY\nimported: []\n"
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["error"], result["flow_run_id"]) == (NotFoundError.__name__, None)
    # An existing, empty registry: the model is unknown.
    from regflow.registry import Registry

    Registry.open(tmp_path / "empty").close()
    done = run_cli(["predict", "ok.csv", "--registry", str(tmp_path / "empty")], files)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("regflow: no model named 'ok' in registry")
    assert done.stderr.endswith("imported: []\n")
