"""The scale part at a tiny size: DuckDB and a real `regflow train --engine dask` (a real
Prefect server, a real LocalCluster) on a few Parquet files; the table and targets keep their
shape and the coefficients agree. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmarks import scale, tree_rss
from benchmarks.run import main, parse_args
from benchmarks.scale_data import duckdb_reference, solve_sums, write_scale_dataset
from regflow.runtime.cores import usable_cores

pytestmark = pytest.mark.timeout(300)


def test_files_hold_the_rows_and_duckdb_solves_the_known_model(tmp_path: Path) -> None:
    dataset = write_scale_dataset(tmp_path / "d", 20_001, 4, features=3)
    files = sorted((tmp_path / "d").glob("*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in files] == [5_001, 5_000, 5_000, 5_000]
    assert pq.read_schema(files[0]).names == ["x0", "x1", "x2", "y"]
    result = duckdb_reference(dataset.folder, 3, threads=2)
    assert result["rows"] == 20_001
    # numpy's least squares on the same rows gives the same solution.
    table = np.vstack([pq.read_table(f).to_pandas().to_numpy() for f in files])
    design = np.column_stack([table[:, :3], np.ones(len(table))])
    expected = np.linalg.lstsq(design, table[:, 3], rcond=None)[0]
    got = np.array([*result["coef"], result["intercept"]])
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    np.testing.assert_allclose(got, [2.0, 1.9, 1.8, 3.0], atol=0.05)  # the generator's model


def test_solve_sums_reads_the_query_order() -> None:
    # Two features, x0 = [1, 2, 3, 4], x1 = [1, 0, 1, 0], y = 1 + 2 x0 - x1.
    x0, x1 = np.array([1.0, 2, 3, 4]), np.array([1.0, 0, 1, 0])
    y = 1 + 2 * x0 - x1
    values = [4, y.sum(), y @ y, x0.sum(), x1.sum(), x0 @ y, x1 @ y, x0 @ x0, x0 @ x1, x1 @ x1]
    coef, intercept = solve_sums([float(v) for v in values], 2)
    np.testing.assert_allclose([*coef, intercept], [2.0, -1.0, 1.0], atol=1e-12)


def test_scale_part_runs_regflow_and_duckdb_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latest.json"
    args = ["--parts", "scale", "--scale-rows", "60000", "--scale-files", "3"]
    code = main([*args, "--out", str(out), "--workdir", str(tmp_path / "work")])
    printed = capsys.readouterr().out
    document = json.loads(out.read_text())
    table = document["scale"]["table"]
    assert code == 0, [r["error"] for r in table]
    assert [(r["rows"], r["files"], r["contender"]) for r in table] == [
        (60_000, 3, scale.DUCKDB),
        (60_000, 3, scale.REGFLOW),
    ]
    duck, regflow = table
    assert duck["seconds"] > 0 and regflow["seconds"] > 0 and regflow["ratio"] > 0
    assert regflow["coef_rel_diff"] <= scale.COEF_REL
    assert regflow["ols_rel_diff"] <= 1e-9
    # The client, the LocalCluster it started while loading, and one worker per core (a
    # worker just forked by the helper is not taken for a second helper), each with its own
    # peak; and the run's own log (at INFO, as a user sees it).
    roles = [p["role"] for p in regflow["processes"]]
    assert roles[0].startswith("client") and roles.count("dask worker") == usable_cores()
    assert roles.count(tree_rss.HELPER) == 1
    assert "Task run 'evaluate" in (tmp_path / "scale-60000.log").read_text()
    assert regflow["total_rss"] >= regflow["max_process_rss"] > 0
    names = [t["name"] for t in document["scale"]["targets"]]
    assert "scale 60,000 rows: regflow end to end / DuckDB query" in names
    assert document["scale"]["markdown"]["table"] in printed
    assert not list((tmp_path / "work").glob("scale-*x*"))  # the files are deleted


def test_scale_options() -> None:
    full = parse_args(["--parts", "scale"])
    assert full.scale_sizes == [(10_000_000, 10), (100_000_000, 100)]
    assert parse_args(["--quick"]).scale_sizes == [(200_000, 8)]
    picked = parse_args(["--scale-rows", "10M,4e7", "--scale-files", "10,40"])
    assert picked.scale_sizes == [(10_000_000, 10), (40_000_000, 40)]
    assert parse_args(["--scale-rows", "250k"]).scale_sizes == [(250_000, 1)]
    assert "scale" not in parse_args([]).parts  # not in a plain `make bench`
    with pytest.raises(SystemExit):
        parse_args(["--scale-rows", "1000,2000", "--scale-files", "2"])
