"""Scaling of extreme columns, the optimality-gap check and the divergence suggestions."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from regflow.errors import TrainingDidNotConvergeError, TrainingDivergedError
from regflow.tasks.evaluate import check_optimality, evaluate_model, make_split
from regflow.tasks.train import aims_at_optimum, fit_linear, resolve_config, standardization

CPU = torch.device("cpu")


def _tiny_scale_frame(n: int = 500) -> pd.DataFrame:
    # A feature scaled by 1e-300: its squares underflow float64, its values float32.
    rng = np.random.default_rng(0)
    x = 1e-300 * rng.standard_normal(n)
    return pd.DataFrame({"x": x, "y": 1.98e300 * x + 0.125 * rng.standard_normal(n)})


def test_a_column_near_1e_300_keeps_its_own_scale() -> None:
    frame = _tiny_scale_frame()
    scaling = standardization(frame, ["x"], "y", None, resolve_config("default"))
    std = float(np.std(frame["x"].to_numpy() * 1e300)) * 1e-300  # rescaled: no underflow
    assert scaling.x_scale[0] == pytest.approx(std, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_feature_scaled_by_1e_300_trains_to_the_optimum(dtype: str) -> None:
    frame = _tiny_scale_frame()
    plan = make_split(len(frame), 0.2, 0)
    config = resolve_config("default", dtype=dtype)  # type: ignore[arg-type]
    trained = fit_linear(frame, ["x"], "y", config, CPU, rows=plan.train_rows)
    evaluation, _ = evaluate_model(frame, ["x"], "y", trained, plan, 1e-3, True)
    assert trained.coefficients["x"] == pytest.approx(evaluation.ols_coefficients["x"], rel=1e-5)
    assert evaluation.optimality_gap is not None and evaluation.optimality_gap < 1e-6
    assert evaluation.metrics["holdout"].r2 > 0.99


def _noisy_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n)
    return pd.DataFrame({"x": x, "y": 3.0 * x + 5.0 + rng.standard_normal(n)})


def test_a_model_short_of_the_optimum_fails_with_a_remedy() -> None:
    frame = _noisy_frame()
    plan = make_split(len(frame), 0.2, 0)
    config = resolve_config("default", optimizer="sgd", epochs=1)
    trained = fit_linear(frame, ["x"], "y", config, CPU, rows=plan.train_rows)
    assert aims_at_optimum(config)
    with pytest.raises(TrainingDidNotConvergeError) as caught:
        evaluate_model(frame, ["x"], "y", trained, plan, 1e-3, aims_at_optimum(config))
    error = caught.value
    assert error.exit_code == 1 and error.state_name == "TrainingDidNotConverge"
    text = str(error)
    assert "tolerance 0.001" in text and "--epochs" in text and "--max-optimality-gap" in text
    # Raised deliberately, the tolerance lets the same model through.
    evaluation, _ = evaluate_model(frame, ["x"], "y", trained, plan, 1e9, True)
    assert evaluation.optimality_gap is not None and evaluation.optimality_gap > 1e-3


def test_the_seed_preset_reports_its_gap_without_failing() -> None:
    frame = _noisy_frame()
    plan = make_split(len(frame), 0.2, 0)
    config = resolve_config("seed")
    assert not aims_at_optimum(config)
    trained = fit_linear(frame, ["x"], "y", config, CPU, rows=plan.train_rows)
    evaluation, _ = evaluate_model(frame, ["x"], "y", trained, plan, 1e-3, aims_at_optimum(config))
    assert evaluation.optimality_gap is not None and evaluation.optimality_gap > 1e-3


def test_untrusted_references_and_exact_fits_are_not_checked() -> None:
    frame = _noisy_frame()
    plan = make_split(len(frame), 0.2, 0)
    config = resolve_config("default", optimizer="sgd", epochs=1)
    trained = fit_linear(frame, ["x"], "y", config, CPU, rows=plan.train_rows)
    evaluation, _ = evaluate_model(frame, ["x"], "y", trained, plan)  # no tolerance: no check
    check_optimality(evaluation.model_copy(update={"reference_trusted": False}), 1e-3, True)
    check_optimality(evaluation.model_copy(update={"optimality_gap": None}), 1e-3, True)
    with pytest.raises(TrainingDidNotConvergeError):
        check_optimality(evaluation.model_copy(update={"optimality_gap": math.nan}), 1e-3, True)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_a_huge_learning_rate_suggests_a_finite_smaller_one(optimizer: str) -> None:
    frame = _noisy_frame()
    config = resolve_config("default", optimizer=optimizer, lr=1e308)  # type: ignore[arg-type]
    with pytest.raises(TrainingDivergedError) as caught:
        fit_linear(frame, ["x"], "y", config, CPU)
    suggested = re.search(r"--lr (\S+)$", str(caught.value))
    assert suggested is not None
    assert math.isfinite(float(suggested[1])) and float(suggested[1]) <= 1.0
