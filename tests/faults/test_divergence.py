"""A learning rate that makes the loss explode stops the run: a message, no model anywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_checks import REPO, registered_versions, run_folders

from regflow.errors import TrainingDidNotConvergeError, TrainingDivergedError
from regflow.flows.training import train

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_exploding_learning_rate_stops_the_run(optimizer: str, tmp_path: Path) -> None:
    registry, out = tmp_path / "registry", tmp_path / "runs"
    state = train(
        data=str(REPO / "data" / "seed.csv"),
        target="y",
        optimizer=optimizer,
        lr=1e30,
        registry=str(registry),
        out=str(out),
        return_state=True,
    )
    error = state.result(raise_on_failure=False)
    assert state.name == "TrainingDiverged" and isinstance(error, TrainingDivergedError)
    assert error.exit_code == 1 and error.status == "failed"
    assert "learning rate is too large" in str(error) and "smaller" in str(error)
    assert registered_versions(registry) == 0 and run_folders(out) == []


def test_a_model_short_of_the_optimum_fails_and_registers_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(200)
    data = tmp_path / "noisy.csv"
    pd.DataFrame({"x": x, "y": 3.0 * x + 5.0 + rng.standard_normal(200)}).to_csv(data, index=False)
    registry, out = tmp_path / "registry", tmp_path / "runs"
    state = train(
        data=str(data), target="y", optimizer="sgd", epochs=1,
        registry=str(registry), out=str(out), return_state=True,
    )  # fmt: skip
    error = state.result(raise_on_failure=False)
    assert state.name == "TrainingDidNotConverge" and isinstance(error, TrainingDidNotConvergeError)
    assert error.exit_code == 1 and "--max-optimality-gap" in str(error)
    assert registered_versions(registry) == 0 and run_folders(out) == []
