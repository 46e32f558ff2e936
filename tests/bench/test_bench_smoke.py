"""The benchmark code at tiny sizes: it runs and its table and JSON keep their shape.

No timing is asserted: CI machines are shared and slow. The end-to-end part (a real Prefect
server) is left to `make bench`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import report
from benchmarks.data import make_columns, mse_of, optimum_mse, write_dataset
from benchmarks.run import main, parse_args

pytestmark = pytest.mark.timeout(300)


def test_data_has_the_known_relation_and_a_float64_optimum(tmp_path: Path) -> None:
    data = make_columns(5_000, 2)
    assert data.shape == (3, 5_000)
    np.testing.assert_array_equal(data, make_columns(5_000, 2))  # fixed seed
    dataset = write_dataset(tmp_path, 5_000, 2)
    assert Path(dataset.csv).exists() and Path(dataset.parquet).exists()
    assert dataset.raw_bytes == 5_000 * 3 * 8
    # The optimum is the least-squares fit: no line does better than it, the true one nearly.
    assert dataset.optimum_mse == pytest.approx(optimum_mse(data))
    true_line = mse_of(data, [2.0, 1.9], 3.0)
    assert dataset.optimum_mse <= true_line < dataset.optimum_mse * 1.01


def test_tiny_run_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latest.json"
    args = ["--rows", "2000", "--features", "2", "--rounds", "1", "--train-rounds", "1"]
    args += ["--parts", "train,ingest"]
    code = main([*args, "--out", str(out), "--workdir", str(tmp_path / "data")])
    printed = capsys.readouterr().out
    document = json.loads(out.read_text())
    errors = [s for s in document["samples"] if s["error"]]
    assert code == 0 and not errors, errors

    assert set(document) >= {"machine", "options", "samples", "table", "targets", "markdown"}
    assert document["machine"]["nproc"] >= 1 and document["machine"]["cpu"]
    table = document["table"]
    # Four training contenders, then two for CSV and two for Parquet ingestion.
    assert [(r["part"], r["contender"]) for r in table] == [
        ("train", report.TUTORIAL),
        ("train", report.REGFLOW["train"]),
        ("train", report.BASELINES["train"]),
        ("train", "numpy lstsq"),
        ("ingest-csv", report.BASELINES["ingest-csv"]),
        ("ingest-csv", report.REGFLOW["ingest-csv"]),
        ("ingest-parquet", report.BASELINES["ingest-parquet"]),
        ("ingest-parquet", report.REGFLOW["ingest-parquet"]),
    ]
    for row in table:
        assert row["seconds"] > 0 and row["peak_rss"] > 0 and row["runs"] == 1
        assert (row["gap"] is not None) == (row["part"] == "train")
        assert row["ratio"] is not None
    regflow = next(r for r in table if r["contender"] == report.REGFLOW["train"])
    assert regflow["gap"] <= 1e-4  # the default preset reaches the optimum

    names = [t["name"] for t in document["targets"]]
    assert "train 2,000x2: regflow / sklearn, gap <= 1e-4" in names
    assert "ingest-csv 2,000x2: regflow / pandas" in names
    lines = document["markdown"]["table"].splitlines()
    assert lines[0].startswith("| part | rows |") and len(lines) == 2 + len(table)
    assert document["markdown"]["table"] in printed
    assert "| train | 2,000 | 2 | numpy lstsq |" in printed


def test_options() -> None:
    quick = parse_args(["--quick"])
    assert quick.rows == [20_000, 200_000] and quick.rounds == quick.train_rounds == 1
    full = parse_args([])
    assert full.rows == [1_000_000, 10_000_000] and full.features == [1, 10]
    assert (full.rounds, full.train_rounds) == (2, 3)
    assert full.parts == ["train", "ingest", "e2e", "seed"]
    with pytest.raises(SystemExit):
        parse_args(["--parts", "train,nope"])
