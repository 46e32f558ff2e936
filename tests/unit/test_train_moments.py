"""Training from merged statistics gives fit_linear's model on the rows they summarise."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from regflow.errors import TrainingDivergedError
from regflow.schemas.results import TrainResult
from regflow.stats.moments_mse import standardization_from_moments
from regflow.tasks.train import fit_linear, resolve_config, standardization
from regflow.tasks.train_config import TrainConfig
from regflow.tasks.train_moments import fit_linear_from_moments

CPU = torch.device("cpu")


def _moments(frame: pd.DataFrame, columns: list[str]) -> tuple[int, np.ndarray, np.ndarray]:
    """n, column means and centred cross products, straight from numpy."""
    values = frame[columns].to_numpy(dtype=np.float64)
    mean = values.mean(axis=0)
    centred = values - mean
    return len(values), mean, centred.T @ centred


def _both(frame: pd.DataFrame, features: list[str], config: TrainConfig) -> tuple[TrainResult, ...]:
    rows = fit_linear(frame, features, "y", config, CPU)
    n, mean, cross = _moments(frame, [*features, "y"])
    return rows, fit_linear_from_moments(n, mean, cross, features, config, CPU)


def _tutorial() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0, 3.0, 3.5], "y": [2.0, 4.0, 6.0, 7.0]})


# float32: the largest relative difference found was 1.05e-6 (losses) and 7e-8 (coefficient).
@pytest.mark.parametrize(("dtype", "rel"), [("float32", 5e-6), ("float64", 1e-10)])
def test_the_tutorials_sgd_follows_the_same_trajectory(dtype: str, rel: float) -> None:
    config = resolve_config("seed", dtype=dtype)  # type: ignore[arg-type]
    assert (config.optimizer, config.lr, config.epochs) == ("sgd", 0.01, 100)
    rows, moments = _both(_tutorial(), ["x"], config)
    assert moments.epochs_run == rows.epochs_run == 100
    np.testing.assert_allclose(moments.losses, rows.losses, rtol=rel, atol=0)
    assert moments.final_loss == pytest.approx(rows.final_loss, rel=rel)
    assert moments.coefficients["x"] == pytest.approx(rows.coefficients["x"], rel=rel)
    assert moments.intercept == pytest.approx(rows.intercept, rel=rel, abs=rel)
    # The loss fell the way the tutorial's does: from ~21.6 to ~0.11, short of the optimum.
    assert moments.losses[0] > 20 and 0.05 < moments.final_loss < 0.2


def _random_frame(n: int = 5000, d: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=[3.0, -1.0, 10.0, 0.0][:d], scale=[1.0, 2.0, 0.5, 5.0][:d], size=(n, d))
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(d)])
    frame["y"] = 4.0 + x @ np.array([1.5, -2.0, 0.5, 0.25][:d]) + rng.normal(size=n)
    return frame


def _least_squares(frame: pd.DataFrame, features: list[str], intercept: bool) -> np.ndarray:
    design = frame[features].to_numpy()
    if intercept:
        design = np.column_stack([design, np.ones(len(frame))])
    solution, *_ = np.linalg.lstsq(design, frame["y"].to_numpy(), rcond=None)
    return np.asarray(solution)


@pytest.mark.parametrize(
    "options",
    [
        {},  # default: L-BFGS on standardised data
        {"dtype": "float64"},
        {"optimizer": "adam"},
        {"optimizer": "sgd"},
        {"fit_intercept": False},
    ],
)
def test_standardised_presets_reach_fit_linears_model_and_the_optimum(options: dict) -> None:
    frame = _random_frame()
    features = [c for c in frame.columns if c != "y"]
    config = resolve_config("default", **options)
    rows, moments = _both(frame, features, config)
    assert rows.standardization.y_scale == pytest.approx(moments.standardization.y_scale)
    optimum = _least_squares(frame, features, config.fit_intercept)
    got = np.array(list(moments.coefficients.values()))
    # Largest differences found: 1.1e-5 from fit_linear (without an intercept, where its
    # float32 residuals stop 1.1e-5 short of the optimum), 7e-7 from the optimum.
    np.testing.assert_allclose(got, list(rows.coefficients.values()), rtol=5e-5)
    np.testing.assert_allclose(got, optimum[: len(features)], rtol=5e-6)
    if config.fit_intercept:
        assert moments.intercept == pytest.approx(optimum[-1], rel=5e-6)
    else:
        assert moments.intercept == 0.0 and moments.bias_trained == 0.0
    assert moments.stop_reason.startswith("early stop") or moments.epochs_run == config.epochs


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardize", [True, False])
def test_the_scaling_from_moments_is_standardizations(
    fit_intercept: bool, standardize: bool
) -> None:
    frame = _random_frame()
    frame["x1"] = 0.0  # a column without variance keeps scale 1
    features = [c for c in frame.columns if c != "y"]
    config = TrainConfig(
        optimizer="lbfgs", lr=1.0, epochs=1, standardize=standardize, fit_intercept=fit_intercept
    )
    expected = standardization(frame, features, "y", None, config)
    n, mean, cross = _moments(frame, [*features, "y"])
    got = standardization_from_moments(
        n, mean, cross, standardize=standardize, fit_intercept=fit_intercept
    )
    np.testing.assert_allclose(got.x_mean, expected.x_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.x_scale, expected.x_scale, rtol=1e-12)
    assert got.x_scale[1] == 1.0
    assert got.y_mean == pytest.approx(expected.y_mean, rel=1e-12)
    assert got.y_scale == pytest.approx(expected.y_scale, rel=1e-12)


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_a_zero_variance_column_trains_like_fit_linear(preset: str) -> None:
    frame = _random_frame(n=2000, d=2)
    frame["c"] = 3.0  # constant: the optimum is not unique in raw units (it and the intercept)
    features = ["x0", "c", "x1"]
    config = resolve_config(preset, dtype="float64")  # type: ignore[arg-type]
    rows, moments = _both(frame, features, config)
    np.testing.assert_allclose(
        list(moments.coefficients.values()), list(rows.coefficients.values()), rtol=1e-9
    )
    assert moments.intercept == pytest.approx(rows.intercept, rel=1e-9)
    np.testing.assert_allclose(moments.losses, rows.losses, rtol=1e-9)
    if preset == "default":  # standardised: the constant column is 0 and never moves
        assert moments.coefficients["c"] == pytest.approx(rows.coefficients["c"], abs=1e-12)
        optimum = _least_squares(frame, ["x0", "x1"], True)
        assert moments.coefficients["x0"] == pytest.approx(optimum[0], rel=1e-6)


@pytest.mark.parametrize(
    ("preset", "optimizer", "lr"),
    [
        ("seed", None, 1e3),
        ("default", "sgd", 1e308),
        ("default", "adam", 1e308),
        ("default", "lbfgs", 1e308),
    ],
)
def test_a_huge_learning_rate_diverges_as_fit_linear_does(
    preset: str, optimizer: str | None, lr: float
) -> None:
    frame = _random_frame(n=500, d=2)
    config = resolve_config(preset, optimizer=optimizer, lr=lr)  # type: ignore[arg-type]
    with pytest.raises(TrainingDivergedError) as from_rows:
        fit_linear(frame, ["x0", "x1"], "y", config, CPU)
    n, mean, cross = _moments(frame, ["x0", "x1", "y"])
    with pytest.raises(TrainingDivergedError) as from_moments:
        fit_linear_from_moments(n, mean, cross, ["x0", "x1"], config, CPU)
    # The same error and remedy; float32 may overflow an epoch apart (different products).
    pattern = r"at epoch (\d+) (.*)$"
    got, expected = (re.search(pattern, str(e.value)) for e in (from_moments, from_rows))
    assert got is not None and expected is not None
    assert got[2] == expected[2] and "--lr" in got[2]
    assert abs(int(got[1]) - int(expected[1])) <= 1


def test_progress_is_reported_as_fit_linear_reports_it() -> None:
    seen: list[int] = []
    n, mean, cross = _moments(_tutorial(), ["x", "y"])
    fit_linear_from_moments(
        n,
        mean,
        cross,
        ["x"],
        resolve_config("seed"),
        CPU,
        progress=lambda e, _t, _l: seen.append(e),
    )
    assert seen == list(range(5, 101, 5))


def test_moments_that_do_not_fit_the_features_are_refused() -> None:
    n, mean, cross = _moments(_tutorial(), ["x", "y"])
    with pytest.raises(ValueError, match="column means"):
        fit_linear_from_moments(n, mean, cross, ["x", "z"], resolve_config(), CPU)
    with pytest.raises(ValueError, match="cross products"):
        fit_linear_from_moments(n, mean, cross[:1], ["x"], resolve_config(), CPU)
