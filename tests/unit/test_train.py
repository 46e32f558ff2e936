"""The trainer: presets, optimizers, devices, precision, early stopping and divergence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from regflow.errors import TrainingDivergedError, UsageError
from regflow.runtime.cores import cpu_model
from regflow.tasks.train import (
    PRESETS,
    choose_dtype,
    describe_device,
    fit_linear,
    resolve_config,
    select_device,
)

SEED = pd.DataFrame({"x": [1.0, 2.0, 3.0, 3.5], "y": [2.0, 4.0, 6.0, 7.0]})
CPU = torch.device("cpu")


def _predict(frame: pd.DataFrame, result) -> np.ndarray:  # type: ignore[no-untyped-def]
    return sum(frame[f].to_numpy() * w for f, w in result.coefficients.items()) + result.intercept


def test_default_preset_fits_the_tutorial_data_exactly() -> None:
    result = fit_linear(SEED, ["x"], "y", resolve_config("default"), CPU)
    np.testing.assert_allclose(_predict(SEED, result), [2, 4, 6, 7], atol=1e-3)
    assert result.coefficients["x"] == pytest.approx(2.0, abs=1e-4)
    assert result.intercept == pytest.approx(0.0, abs=1e-4)


def test_seed_preset_is_the_tutorial_configuration() -> None:
    config = resolve_config("seed")
    assert (config.optimizer, config.lr, config.epochs, config.standardize) == (
        "sgd",
        0.01,
        100,
        False,
    )
    assert not config.early_stopping
    first = fit_linear(SEED, ["x"], "y", config, CPU)
    second = fit_linear(SEED, ["x"], "y", config, CPU)
    assert first.epochs_run == 100 and len(first.losses) == 100
    # Seeded and deterministic on CPU: the same weights to the last bit.
    assert first.coefficients == second.coefficients and first.intercept == second.intercept
    # 100 epochs of SGD at lr 0.01 get close to y = 2x but not onto it, as in the tutorial.
    assert first.losses[-1] < first.losses[0]
    np.testing.assert_allclose(_predict(SEED, first), [2, 4, 6, 7], atol=0.6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_every_optimizer_reaches_the_optimum_on_easy_data(optimizer: str) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(5, 3, size=200)})
    frame["y"] = 3 * frame.a - 0.5 * frame.b + 10 + rng.normal(0, 0.1, 200)
    config = resolve_config("default", optimizer=optimizer)  # type: ignore[arg-type]
    result = fit_linear(frame, ["a", "b"], "y", config, CPU)
    assert result.coefficients["a"] == pytest.approx(3, abs=0.05)
    assert result.coefficients["b"] == pytest.approx(-0.5, abs=0.05)
    assert result.intercept == pytest.approx(10, abs=0.3)


def test_no_intercept_fits_through_the_origin() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.1, 3.9, 6.2, 7.9]})
    result = fit_linear(frame, ["x"], "y", resolve_config("default", fit_intercept=False), CPU)
    assert result.intercept == 0.0
    expected = float(frame.x @ frame.y / (frame.x @ frame.x))
    assert result.coefficients["x"] == pytest.approx(expected, rel=1e-5)


def test_early_stopping_ends_before_the_epoch_limit() -> None:
    config = resolve_config("default", epochs=500)
    result = fit_linear(SEED, ["x"], "y", config, CPU)
    assert result.epochs_run < 500
    assert "early stop" in result.stop_reason or "zero" in result.stop_reason


def test_exploding_loss_stops_with_advice() -> None:
    config = resolve_config("seed", lr=10.0)
    with pytest.raises(TrainingDivergedError, match=r"smaller one, e\.g\. --lr 1"):
        fit_linear(SEED, ["x"], "y", config, CPU)


def test_rows_select_the_training_rows() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0], "y": [2.0, 4.0, 6.0, 8.0, -50.0]})
    result = fit_linear(frame, ["x"], "y", resolve_config("default"), CPU, rows=np.arange(4))
    assert result.coefficients["x"] == pytest.approx(2.0, abs=1e-4)


def test_device_selection() -> None:
    assert select_device("cpu").type == "cpu"
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else "mps"
        if torch.backends.mps.is_available()
        else "cpu"
    )
    assert select_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="'cuda' is not available") as err:
            select_device("cuda")
        assert err.value.exit_code == 2
    if not torch.backends.mps.is_available():
        with pytest.raises(UsageError, match="'mps' is not available"):
            select_device("mps")


def test_result_names_the_device_it_trained_on() -> None:
    result = fit_linear(SEED, ["x"], "y", resolve_config("default"), CPU)
    assert result.device == "cpu"
    # The processor's model (from /proc/cpuinfo on Linux), never empty.
    assert result.device_name == describe_device(CPU) == cpu_model()
    assert result.device_name.strip()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_hidden_gpus_are_named_in_the_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(UsageError, match=r"available: cpu.*; CUDA_VISIBLE_DEVICES=''"):
        select_device("cuda")


def test_precision_choice() -> None:
    assert choose_dtype("auto", condition_number=10, r_squared=0.9, device=CPU)[0] == "float32"
    assert choose_dtype("auto", condition_number=1e5, r_squared=0.9, device=CPU)[0] == "float64"
    assert choose_dtype("auto", condition_number=10, r_squared=1 - 1e-7, device=CPU)[0] == "float64"
    assert choose_dtype("float32", condition_number=1e9, r_squared=0.5, device=CPU)[0] == "float32"
    assert (
        choose_dtype("auto", condition_number=1e9, r_squared=0.5, device=torch.device("mps"))[0]
        == "float32"
    )


def test_unknown_preset_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        resolve_config("fast")
    assert set(PRESETS) == {"default", "seed"}
