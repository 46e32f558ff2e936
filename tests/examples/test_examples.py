"""The scripts in examples/ run as a user runs them and print what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regflow.stats.splitting import holdout_mask

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tutorial_example(prefect_harness: str, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    registry, out = tmp_path / "registry", tmp_path / "runs"
    args = ["--registry", str(registry), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "examples/tutorial.py", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "tutorial: seed:1 (sgd, lr 0.01, 100 epochs)"
    predicted = re.search(r"predicted \[(.*)\]", done.stdout)
    assert predicted is not None
    # The tutorial's SGD lands near y = 2x, within its 100 epochs.
    for value, true in zip(predicted.group(1).split(", "), [2, 4, 6, 7], strict=True):
        assert abs(float(value) - true) < 0.6
    assert "  the same frame again: unchanged (seed:1)" in lines
    assert re.search(r"^diabetes: diabetes:1 on 10 features, trained on \w+$", done.stdout, re.M)
    held = int(holdout_mask(np.arange(442), 0, 0.2).sum())  # diabetes: 442 rows, seed 0
    r2 = re.search(rf"holdout n={held} R² (\S+)", done.stdout)
    assert r2 is not None and 0.3 < float(r2.group(1)) < 0.7  # a real, noisy dataset
    assert "predictions with diabetes@champion (diabetes:1):" in lines
    assert sum(line.startswith("  patient ") for line in lines) == 5
    assert lines[-1] == "registry: diabetes: 1 version(s), seed: 1 version(s)"
    assert any((out / "diabetes").iterdir())
