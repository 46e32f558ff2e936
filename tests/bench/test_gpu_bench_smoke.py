"""benchmarks/gpu.py at tiny sizes on whatever device is here (the CPU in CI): it runs, writes
results.json and results.md, and they hold sane content. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.gpu import CPU_TRAINER, GPU_TRAINER, SKLEARN, main, parse_args

pytestmark = pytest.mark.timeout(300)


def test_smoke_run_writes_json_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gpu"
    assert main(["--smoke", "--rows", "3000", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text()

    assert set(document) >= {"machine", "options", "samples", "transfers", "data_moved_once"}
    machine = document["machine"]
    assert machine["device_name"] and machine["torch"] == torch.__version__
    on_gpu = torch.cuda.is_available()
    expected = ([GPU_TRAINER] if on_gpu else []) + [CPU_TRAINER, SKLEARN]
    assert [s["contender"] for s in document["samples"]] == expected
    for sample in document["samples"]:
        assert sample["rows"] == 3000 and sample["features"] == 10
        assert sample["seconds"] > 0 and sample["note"] == ""
        # Every contender reaches the same least-squares fit: y = 3 + sum (2 - 0.1 j) x_j.
        assert sample["max_rel_diff_vs_cpu"] < 1e-4
        assert sample["coefficients"][0] == pytest.approx(2.0, abs=0.1)
        assert (sample["peak_gpu_mib"] is not None) == (sample["device"] == "cuda")
    sklearn = next(s for s in document["samples"] if s["contender"] == SKLEARN)
    assert sklearn["ratio_vs_sklearn"] == 1.0

    # Two presets at two epoch counts; the data moved once in each.
    assert [(t["preset"], t["epochs"]) for t in document["transfers"]] == [
        ("default", 10),
        ("default", 100),
        ("seed", 10),
        ("seed", 100),
    ]
    assert document["data_moved_once"] is True
    assert all(t["data_moves"] >= 1 for t in document["transfers"])

    lines = table.splitlines()
    assert lines[0].startswith("Machine: ")
    assert "| rows | features | contender |" in table
    assert f"| 3,000 | 10 | {CPU_TRAINER} | cpu |" in table
    assert "whatever the epochs: yes." in table
    assert table in printed


def test_options() -> None:
    full = parse_args([])
    assert full.rows == [10_000_000, 100_000_000] and full.profile_rows == 1_000_000
    assert full.out == Path("artifacts/gpu") and full.device == "auto"
    smoke = parse_args(["--smoke"])
    assert smoke.rows == [2_000, 5_000] and smoke.profile_rows == 2_000
