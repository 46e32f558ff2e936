"""The dask engine against the local one on the same rows: a real LocalCluster of 2 worker
processes, a dataset of 40 Parquet files made here, and the same data as one file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regflow.flows.training import train
from regflow.io.datasets import dataset_sha256, describe_file
from regflow.registry import Registry

pytestmark = pytest.mark.usefixtures("prefect_harness")

FILES = 40
COEF = np.array([2.0, -1.0, 0.5])


def write_dataset(folder: Path, seed: int = 3, rows: tuple[int, int] = (150, 350)) -> pd.DataFrame:
    """FILES Parquet files of uneven sizes, and the whole table in their order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    parts = []
    for i in range(FILES):
        n = int(rng.integers(*rows))
        x = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.2] + [0.0, 5.0, -1.0]
        frame = pd.DataFrame(x, columns=["a", "b", "c"])
        frame["y"] = x @ COEF + 4.0 + rng.normal(0, 0.5, n)
        frame.to_parquet(folder / f"part-{i:03d}.parquet", index=False)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def run(tmp_path: Path, data: str, engine: str, **options: Any) -> Any:
    state = train(
        data=data,
        target="y",
        model="sales",
        engine=engine,
        dtype="float64",
        out=str(tmp_path / "runs"),
        registry=str(tmp_path / f"registry-{engine}"),
        return_state=True,
        **options,
    )
    assert state.is_completed(), state.message
    return state.result()


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def test_dask_equals_local_on_the_same_rows(tmp_path: Path, cluster_address: str) -> None:
    whole = write_dataset(tmp_path / "parts")
    single = tmp_path / "whole.parquet"
    whole.to_parquet(single, index=False)

    local = run(tmp_path, str(single), "local")
    dask = run(tmp_path, str(tmp_path / "parts"), "dask", dask_address=cluster_address)

    # The gate: r, R, p-values and the condition number from merged moments.
    for mine, theirs in zip(dask.gate.features, local.gate.features, strict=True):
        assert rel(mine.r, theirs.r) < 1e-10 and rel(mine.p_value, theirs.p_value) < 1e-10
        assert rel(mine.spearman, theirs.spearman) < 1e-10  # every row is in the sample
    assert rel(dask.gate.multiple_r, local.gate.multiple_r) < 1e-10
    assert rel(dask.gate.condition_number, local.gate.condition_number) < 1e-10
    assert [w.kind for w in dask.gate.warnings] == [w.kind for w in local.gate.warnings]
    assert dask.gate.decision == local.gate.decision == "pass"

    # The same holdout rows, the same float64 optimum on the training rows.
    assert dask.evaluation.holdout_note == local.evaluation.holdout_note
    assert dask.evaluation.metrics["holdout"].n == local.evaluation.metrics["holdout"].n
    for name, value in local.evaluation.ols_coefficients.items():
        assert rel(dask.evaluation.ols_coefficients[name], value) < 1e-10
    assert rel(dask.evaluation.ols_mse, local.evaluation.ols_mse) < 1e-10

    # The trained model (float64, from the moments vs from the rows) and its metrics.
    for name, value in local.training.coefficients.items():
        assert rel(dask.training.coefficients[name], value) < 1e-8
    for split, metrics in local.evaluation.metrics.items():
        assert rel(dask.evaluation.metrics[split].mse, metrics.mse) < 1e-8
        assert dask.evaluation.metrics[split].n == metrics.n

    # Predictions: a Parquet part per file, written by the workers, same rows and labels.
    folder = Path(dask.paths.predictions)
    parts = sorted(folder.glob("part-*.parquet"))
    assert len(parts) == FILES
    mine_pred = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    theirs_pred = pd.read_parquet(local.paths.predictions)
    assert list(mine_pred.columns) == list(theirs_pred.columns)
    assert (mine_pred["split"].astype(str) == theirs_pred["split"].astype(str)).all()
    np.testing.assert_array_equal(mine_pred["true"], theirs_pred["true"])
    np.testing.assert_allclose(mine_pred["predicted"], theirs_pred["predicted"], rtol=1e-8)

    # Registered with the file list; the registry verifies every part.
    card = json.loads(Path(dask.paths.card).read_text())
    assert len(card["data"]["files"]) == FILES and card["data"]["rows"] == len(whole)
    with Registry.open(str(tmp_path / "registry-dask")) as reg:
        assert reg.resolve(dask.model_ref).data_sha256 == dask.data_sha256
        assert reg.verify() == []
        assert reg.get_alias("sales", "champion") == dask.model_version

    # Retrained on the same rows: the champion, scored by the workers, ties the challenger.
    again = run(tmp_path, str(tmp_path / "parts"), "dask", dask_address=cluster_address,
                force=True)  # fmt: skip
    assert not again.promoted and again.promotion["rule"] == "tie"
    champion = again.promotion["champion_metrics"]
    assert rel(champion["mse"], dask.evaluation.metrics["holdout"].mse) < 1e-12


def test_seed_preset_follows_the_same_trajectory(tmp_path: Path, cluster_address: str) -> None:
    """The tutorial's full-batch SGD from the statistics: the same losses, epoch by epoch."""
    folder = tmp_path / "tutorial"
    folder.mkdir()
    x, y = [1.0, 2.0, 3.0, 3.5], [2.0, 4.0, 6.0, 7.0]
    for i in range(4):
        pd.DataFrame({"x": [x[i]], "y": [y[i]]}).to_parquet(folder / f"p{i}.parquet")
    pd.DataFrame({"x": x, "y": y}).to_parquet(tmp_path / "seed.parquet")
    options = {"preset": "seed", "features": ["x"]}
    local = run(tmp_path, str(tmp_path / "seed.parquet"), "local", **options)
    dask = run(tmp_path, str(folder), "dask", dask_address=cluster_address, **options)
    np.testing.assert_allclose(dask.training.losses, local.training.losses, rtol=1e-12)
    assert rel(dask.training.coefficients["x"], local.training.coefficients["x"]) < 1e-12


def test_quarantine_per_partition(tmp_path: Path, cluster_address: str) -> None:
    """Invalid rows in two files are set aside; one folder of Parquet parts lists them."""
    folder = tmp_path / "parts"
    write_dataset(folder)
    for i, row in ((3, 7), (20, 0)):
        path = folder / f"part-{i:03d}.parquet"
        frame = pd.read_parquet(path)
        frame.loc[row, "b"] = np.nan
        frame.to_parquet(path, index=False)
    outcome = run(
        tmp_path, str(folder), "dask", dask_address=cluster_address,
        on_invalid="quarantine", max_invalid_fraction=0.01,
    )  # fmt: skip
    assert outcome.quarantine.rows_rejected == 2
    assert outcome.quarantine.by_check == {"not_nullable": 2}
    parts = sorted(Path(outcome.paths.quarantine).glob("part-*.parquet"))
    rejected = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    names = rejected["file"].map(lambda f: Path(f).name)
    assert sorted(zip(names, rejected["row"], strict=True)) == [
        ("part-003.parquet", 8),
        ("part-020.parquet", 1),
    ]


class Remember(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_run_starts_and_closes_its_own_cluster(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    write_dataset(folder, rows=(30, 40))
    run_log, cluster_log = Remember(), Remember()
    flow_runs = logging.getLogger("prefect.flow_runs")  # the run logger's, at INFO here
    level = flow_runs.level
    flow_runs.setLevel(logging.INFO)
    flow_runs.addHandler(run_log)
    logging.getLogger("distributed").addHandler(cluster_log)
    try:
        outcome = run(tmp_path, str(folder / "part-0[0-4]*.parquet"), "auto")  # a glob: dask
    finally:
        flow_runs.removeHandler(run_log)
        flow_runs.setLevel(level)
        logging.getLogger("distributed").removeHandler(cluster_log)
    logged = "\n".join(record.getMessage() for record in run_log.records)
    assert "started a LocalCluster of" in logged and "dashboard http://127.0.0.1:" in logged
    assert not [r for r in cluster_log.records if r.levelno < logging.WARNING]  # quiet
    assert outcome.evaluation.metrics["all"].n == sum(
        len(pd.read_parquet(p)) for p in sorted(folder.glob("part-0[0-4]*.parquet"))
    )


def test_validate_pass_hashes_parquet_and_unchanged_data_trains_nothing(
    tmp_path: Path, cluster_address: str
) -> None:
    """Parquet files are hashed as the validate pass reads them: the fingerprint and the
    card's file list are those of describe_file, and the same data again registers nothing
    and leaves no staging folder behind."""
    folder = tmp_path / "parts"
    write_dataset(folder, rows=(30, 40))
    first = run(tmp_path, str(folder), "dask", dask_address=cluster_address)
    files = [describe_file(str(path)) for path in sorted(folder.glob("*.parquet"))]
    assert first.data_sha256 == dataset_sha256(files)
    card = json.loads(Path(first.paths.card).read_text())
    listed = [(f["path"], f["size"], f["sha256"], f["rows"]) for f in card["data"]["files"]]
    assert listed == [(f.path, f.size, f.sha256, f.rows) for f in files]
    runs = tmp_path / "runs" / "sales"
    before = sorted(runs.iterdir())

    again = run(tmp_path, str(folder), "dask", dask_address=cluster_address)
    assert again.status == "unchanged" and again.model_version == first.model_version
    assert again.data_sha256 == first.data_sha256
    assert sorted(runs.iterdir()) == before  # the validate pass's staging folder is gone

    moved = pd.read_parquet(folder / "part-005.parquet")
    moved.loc[0, "y"] += 1.0
    moved.to_parquet(folder / "part-005.parquet", index=False)
    changed = run(tmp_path, str(folder), "dask", dask_address=cluster_address)
    assert changed.status == "completed" and changed.data_sha256 != first.data_sha256


def test_both_engines_summarise_the_same_sampled_training_rows(
    tmp_path: Path, cluster_address: str
) -> None:
    """Past SAMPLE_ROWS rows the card's drift summaries come from a sample drawn by row
    position: the dask engine's workers and the local engine draw the same rows."""
    from regflow.tasks.evaluate import SAMPLE_ROWS

    rows = SAMPLE_ROWS + 30_000
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(rng.normal(size=(rows, 2)), columns=["a", "b"])
    frame["y"] = 2.0 * frame.a - frame.b + rng.normal(0, 0.3, rows)
    folder = tmp_path / "big"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(rows), 3)):
        frame.iloc[part].to_parquet(folder / f"part-{i}.parquet", index=False)
    frame.to_parquet(tmp_path / "big.parquet", index=False)
    local = run(tmp_path, str(tmp_path / "big.parquet"), "local")
    dask = run(tmp_path, str(folder), "dask", dask_address=cluster_address)
    mine = json.loads(Path(dask.paths.card).read_text())["feature_summary"]
    theirs = json.loads(Path(local.paths.card).read_text())["feature_summary"]
    assert mine == theirs
    n = theirs["a"]["n"]  # about SAMPLE_ROWS of the ~80% training rows
    assert 0.7 * SAMPLE_ROWS < n < 0.9 * SAMPLE_ROWS
