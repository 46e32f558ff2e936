"""`regflow train` as a user runs it: a real process, exit codes, JSON on the last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from run_checks import registered_versions, run_folders

from regflow.runtime.cores import cpu_model

REPO = Path(__file__).resolve().parents[2]
REGFLOW = [sys.executable, "-m", "regflow.cli"]


def run_cli(
    args: list[str],
    api_url: str | None,
    timeout: int = 240,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PREFECT_API_URL", None)
    if api_url:
        full_env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [*REGFLOW, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_seed_json_reports_completed_predictions(prefect_harness: str, tmp_path: Path) -> None:
    done = run_cli(
        [
            "train",
            "data/seed.csv",
            "--target",
            "y",
            "--features",
            "x",
            "--json",
            "--out",
            str(tmp_path),
        ],
        prefect_harness,
    )
    assert done.returncode == 0, done.stderr
    result = last_json(done.stdout)
    assert result["status"] == "completed"
    assert result["flow_run_id"]
    assert result["device"] == "cpu"
    assert result["device_name"] == cpu_model()
    card = json.loads(Path(result["paths"]["card"]).read_text())
    assert card["training"]["device"] == "cpu"
    assert card["training"]["device_name"] == cpu_model()
    assert result["epochs_run"] >= 1
    assert set(result["metrics"]["all"]) >= {"mse", "rmse", "mae", "r2"}
    assert "ols_mse" in result["metrics"] and "optimality_gap" in result["metrics"]
    assert result["gate"]["features"]["x"]["r"] == pytest.approx(1.0)
    assert result["gate"]["decision"] == "pass"
    assert result["coefficients"]["weights"]["x"] == pytest.approx(2.0, abs=1e-3)
    predictions = pd.read_parquet(result["paths"]["predictions"])
    np.testing.assert_allclose(predictions["predicted"], [2, 4, 6, 7], atol=1e-3)
    preview = [row["predicted"] for row in result["predictions"]]
    np.testing.assert_allclose(preview, [2, 4, 6, 7], atol=1e-3)
    for key in ("run_dir", "model", "plots", "predictions"):
        assert key in result["paths"]


def test_human_output_says_where_things_went(prefect_harness: str, tmp_path: Path) -> None:
    done = run_cli(
        ["train", "data/seed.csv", "--target", "y", "--out", str(tmp_path)], prefect_harness
    )
    assert done.returncode == 0, done.stderr
    assert "model.safetensors" in done.stdout and "plot:" in done.stdout
    assert f"trained on cpu ({cpu_model()};" in done.stdout


def test_gated_exit_3(prefect_harness: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = tmp_path / "noise.csv"
    pd.DataFrame({"x": rng.normal(size=100), "y": rng.normal(size=100)}).to_csv(data, index=False)
    done = run_cli(
        ["train", str(data), "--target", "y", "--json", "--out", str(tmp_path / "runs")],
        prefect_harness,
    )
    assert done.returncode == 3, done.stderr
    result = last_json(done.stdout)
    assert result["status"] == "gated" and result["gate"]["decision"] == "stop"
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_invalid_exit_2_lists_failures(prefect_harness: str, tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("x,y\n1,2\nfoo,4\n3,\n4,8\n")
    done = run_cli(["train", str(data), "--target", "y", "--json"], prefect_harness)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "column 'x'" in done.stderr and "coerce_dtype" in done.stderr
    assert str(data) in done.stderr
    result = last_json(done.stdout)
    assert result["status"] == "invalid"
    assert {p["check"] for p in result["problems"]} >= {"coerce_dtype", "not_nullable"}


def test_absent_device_is_a_usage_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = run_cli(["train", "data/seed.csv", "--target", "y", "--device", "cuda", "--json"], None)
    assert done.returncode == 2
    assert "not available" in done.stderr and "Traceback" not in done.stderr


def test_cuda_hidden_by_cuda_visible_devices_exits_2_leaving_nothing(tmp_path: Path) -> None:
    """With every GPU hidden, `--device cuda` is a usage error on any machine, GPU or not."""
    out, registry = tmp_path / "runs", tmp_path / "registry"
    args = ["train", "data/seed.csv", "--target", "y", "--device", "cuda"]
    args += ["--out", str(out), "--registry", str(registry)]
    done = run_cli(args, None, env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    # One message: its headline and the one problem, naming the check and the hidden GPUs.
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert "device_available" in lines[1] and "'cuda' is not available" in lines[1]
    assert "CUDA_VISIBLE_DEVICES=''" in lines[1]
    assert run_folders(out) == [] and not out.exists()
    assert registered_versions(registry) == 0


def test_runs_without_a_server_on_prefects_temporary_one(tmp_path: Path) -> None:
    done = run_cli(
        ["train", "data/seed.csv", "--target", "y", "--json", "--out", str(tmp_path)],
        None,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout)["status"] == "completed"


def test_unchanged_then_forced_then_monitored(prefect_harness: str, tmp_path: Path) -> None:
    base = ["train", "data/seed.csv", "--target", "y", "--out", str(tmp_path / "runs")]
    registry = ["--registry", str(tmp_path / "registry")]
    first = run_cli([*base, *registry, "--json"], prefect_harness)
    assert first.returncode == 0 and last_json(first.stdout)["model"]["reference"] == "seed:1"

    again = run_cli([*base, *registry], prefect_harness)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("model 'seed' unchanged: seed:1 (@champion) was trained")
    as_json = run_cli([*base, *registry, "--json"], prefect_harness)
    unchanged = last_json(as_json.stdout)
    assert as_json.returncode == 0 and unchanged["status"] == "unchanged"
    assert unchanged["model"] == {
        "name": "seed",
        "version": 1,
        "reference": "seed:1",
        "aliases": ["champion"],
    }
    assert unchanged["registered"] is False and unchanged["promoted"] is False

    forced = run_cli([*base, *registry, "--json", "--force"], prefect_harness)
    result = last_json(forced.stdout)
    assert result["status"] == "completed" and result["model"]["reference"] == "seed:2"
    assert result["promotion"]["rule"] == "tie" and not result["promoted"]

    show = run_cli(["models", "show", "seed:2", *registry], None)
    assert show.returncode == 0 and "  size:      " in show.stdout

    # Scoring shifted labelled data: degraded, exit 0, and the record is listed.
    shifted = tmp_path / "shifted.csv"
    pd.DataFrame({"x": [10.0, 11.0, 12.0], "y": [25.0, 27.0, 30.0]}).to_csv(shifted, index=False)
    scored = run_cli(
        ["predict", str(shifted), "--model", "seed@champion", "--out", str(tmp_path / "s.csv"),
         "--max-psi", "100", *registry],
        prefect_harness,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert "  monitoring: DEGRADED on 3 labelled rows" in scored.stdout
    assert "mse_ratio" in scored.stdout and "FAILED" in scored.stdout
    assert "psi:x" in scored.stdout  # measured, but within the generous --max-psi 100
    monitored = run_cli(["models", "monitor", "seed", "--json", *registry], None)
    (record,) = last_json(monitored.stdout)["records"]
    assert record["version"] == 1
    assert record["status"] == "degraded" and record["failed"] == ["mse_ratio"]


def test_a_folder_of_files_trains_on_the_dask_engine(prefect_harness: str, tmp_path: Path) -> None:
    """`regflow train data/parts`: auto picks dask (a LocalCluster); workers write the parts."""
    runs = tmp_path / "runs"
    done = run_cli(
        ["train", "data/parts", "--target", "sales", "--out", str(runs),
         "--registry", str(tmp_path / "registry")],
        prefect_harness,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model 'parts' trained" in done.stdout
    # The cluster started while the CLI loaded (a helper process) is gone with the CLI.
    helpers = [p for p in psutil.process_iter(["cmdline"])
               if "regflow.runtime.early_cluster" in " ".join(p.info["cmdline"] or [])]  # fmt: skip
    assert helpers == []
    (run,) = (runs / "parts").iterdir()
    assert sorted(p.name for p in (run / "predictions").iterdir()) == [
        f"part-{i:05d}.parquet" for i in range(4)
    ]


def test_several_files_are_one_dataset(prefect_harness: str, tmp_path: Path) -> None:
    """`regflow train A B`: two paths are one dataset of two files (as a shell's glob gives
    them); the card lists both, in path order."""
    first, second = "data/parts/part-002.csv", "data/parts/part-000.csv"
    done = run_cli(
        ["train", first, second, "--target", "sales", "--engine", "local", "--json",
         "--out", str(tmp_path / "runs"), "--registry", str(tmp_path / "registry")],
        prefect_harness,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = last_json(done.stdout)
    assert outcome["metrics"]["all"]["n"] == 100  # 50 rows each
    card = json.loads(Path(outcome["paths"]["card"]).read_text())
    assert [f["path"] for f in card["data"]["files"]] == [second, first]


def test_parquet_hashed_ahead_finds_unchanged_data_before_the_validate_pass(
    prefect_harness: str, tmp_path: Path
) -> None:
    """A folder of settled Parquet files: the early cluster hashes them while the CLI loads,
    so describe fingerprints the dataset (the same fingerprint the validate pass takes) and
    a second run on the same data is unchanged without validating anything."""
    from regflow.io.datasets import dataset_sha256, outline_file
    from regflow.io.hashing import SETTLED_S, sha256_file

    parts = tmp_path / "parts"
    parts.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        x = rng.normal(size=200)
        frame = pd.DataFrame({"x": x, "y": 2.0 * x + 1.0 + rng.normal(scale=0.1, size=200)})
        frame.to_parquet(parts / f"part-{i}.parquet", index=False)
    files = sorted(str(p) for p in parts.iterdir())
    expected = dataset_sha256([replace(outline_file(p), sha256=sha256_file(p)[0]) for p in files])
    time.sleep(SETTLED_S + 0.2)  # settled: the helper hashes only files not changed lately
    base = ["train", str(parts), "--target", "y", "--json", "--out", str(tmp_path / "runs"),
            "--registry", str(tmp_path / "registry")]  # fmt: skip
    logged = {"PREFECT_LOGGING_LEVEL": "INFO"}
    first = run_cli(base, prefect_harness, env=logged)
    assert first.returncode == 0, first.stderr[-3000:]
    said = [line for line in first.stderr.splitlines() if "dataset SHA-256" in line]
    assert len(said) == 1 and "Task run 'describe-" in said[0] and expected[:12] in said[0]
    card = json.loads(Path(last_json(first.stdout)["paths"]["card"]).read_text())
    assert card["data"]["sha256"] == expected

    again = run_cli(base, prefect_harness, env=logged)
    assert again.returncode == 0 and last_json(again.stdout)["status"] == "unchanged"
    assert "Task run 'validate-" not in again.stderr  # decided before the validate pass
    assert "Task run 'validate-" in first.stderr
