"""`regflow train` on a GPU machine: the device and its name in the card, --json and summary;
`--device cuda` with every GPU hidden is a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from run_checks import last_json, regflow, registered_versions, run_folders

pytestmark = pytest.mark.gpu


def test_auto_trains_on_cuda_and_records_its_name(prefect_harness: str, tmp_path: Path) -> None:
    name = torch.cuda.get_device_name(0)
    args = ["train", "data/seed.csv", "--target", "y", "--device", "auto"]
    args += ["--out", str(tmp_path / "runs"), "--registry", str(tmp_path / "registry")]
    done = regflow([*args, "--json"], prefect_harness)
    assert done.returncode == 0, done.stderr
    result = last_json(done.stdout)
    assert (result["device"], result["device_name"]) == ("cuda", name)
    card = json.loads(Path(result["paths"]["card"]).read_text())
    assert (card["training"]["device"], card["training"]["device_name"]) == ("cuda", name)
    summary = regflow([*args, "--force"], prefect_harness)  # same data: unchanged otherwise
    assert summary.returncode == 0, summary.stderr
    assert f"trained on cuda ({name};" in summary.stdout


def test_cuda_with_gpus_hidden_exits_2(prefect_harness: str, tmp_path: Path) -> None:
    out, registry = tmp_path / "runs", tmp_path / "registry"
    args = ["train", "data/seed.csv", "--target", "y", "--device", "cuda"]
    done = regflow(
        [*args, "--out", str(out), "--registry", str(registry)],
        prefect_harness,
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "'cuda' is not available" in done.stderr and "CUDA_VISIBLE_DEVICES=''" in done.stderr
    assert run_folders(out) == [] and registered_versions(registry) == 0
