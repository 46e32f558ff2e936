"""Bad input and faults through the real command line: exit codes 0/1/2, one message, JSON,
no traceback. The corpus itself runs in-process (test_train_bad_input.py); these processes
run side by side to keep the suite quick."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_checks import REPO, last_json, regflow, registered_versions

from regflow.flows.training import train

pytestmark = pytest.mark.slow
REPO_SEED = REPO / "data" / "seed.csv"


@pytest.fixture(scope="module")
def runs(
    prefect_harness: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(2)
    x = rng.normal(size=50)
    dirty = pd.DataFrame({"x": x.astype(object), "y": 2 * x + rng.normal(0, 0.1, 50)})
    dirty.loc[[5, 6], "x"] = ["?", "-"]
    dirty_csv = folder / "dirty.csv"
    dirty.to_csv(dirty_csv, index=False)
    # A model to predict with, trained in-process into the registry the predict run reads.
    model_registry = folder / "model-registry"
    train(data=str(REPO_SEED), target="y", registry=str(model_registry), out=str(folder / "m"))
    strings = folder / "score.csv"
    strings.write_text("x\n1\ntwo\n")

    commands = {
        "quarantine": [
            "train",
            str(dirty_csv),
            "--target",
            "y",
            "--on-invalid",
            "quarantine",
            "--max-invalid-fraction",
            "0.05",
        ],
        "diverged": [
            "train",
            str(REPO_SEED),
            "--target",
            "y",
            "--optimizer",
            "sgd",
            "--lr",
            "1e6",
        ],
        "predict": ["predict", str(strings), "--model", "seed:1", "--out", str(folder / "o.csv")],
    }

    def run(item: tuple[str, list[str]]) -> tuple[str, tuple[subprocess.CompletedProcess, Path]]:
        name, args = item
        registry = model_registry if name == "predict" else folder / f"registry-{name}"
        extra = ["--registry", str(registry), "--json"]
        if args[0] == "train":
            extra += ["--out", str(folder / f"runs-{name}")]
        return name, (regflow([*args, *extra], prefect_harness), registry)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return dict(pool.map(run, commands.items()))


def _clean_failure(done: subprocess.CompletedProcess, code: int) -> dict:
    assert done.returncode == code, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "NoneType: None" not in done.stderr
    assert done.stderr.count("\nregflow: ") + done.stderr.startswith("regflow: ") == 1
    return last_json(done.stdout)


def test_quarantine_reports_counts_in_json(runs: dict) -> None:
    done, registry = runs["quarantine"]
    assert done.returncode == 0, done.stderr[-3000:]
    result = last_json(done.stdout)
    assert result["status"] == "completed"
    assert result["quarantine"]["rows_rejected"] == 2 and result["quarantine"]["rows_used"] == 48
    listed = pd.read_csv(result["paths"]["quarantine"], dtype=str)
    assert listed[["row", "column", "check", "value"]].values.tolist() == [
        ["6", "x", "coerce_dtype", "?"],
        ["7", "x", "coerce_dtype", "'-"],  # neutralised: a spreadsheet would read a formula
    ]
    assert registered_versions(registry) == 1


def test_exploding_learning_rate_exit_1_and_nothing_registered(runs: dict) -> None:
    done, registry = runs["diverged"]
    result = _clean_failure(done, 1)
    assert result["status"] == "failed" and result["error"] == "TrainingDivergedError"
    # A tenth of the lr, capped at 1 (the largest default lr): 1e6 / 10 would diverge too.
    assert result["message"].endswith("try a smaller one, e.g. --lr 1")
    # The message says what was not done, in words and in the JSON.
    assert "  nothing was published or registered" in done.stderr
    assert result["published"] is False and result["registered"] is False
    assert "e.g. --lr 1\n" in done.stderr
    assert registered_versions(registry) == 0


def test_predict_wrong_type_exit_2(runs: dict) -> None:
    done, _ = runs["predict"]
    result = _clean_failure(done, 2)
    assert result["status"] == "invalid"
    assert [(p["column"], p["check"]) for p in result["problems"]] == [("x", "numeric_dtype")]
    assert "score.csv" in done.stderr and "column 'x'" in done.stderr
