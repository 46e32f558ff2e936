"""The trainer on CUDA: the device picked, the same fit as on the CPU, the tutorial's epochs,
and the data moved to the GPU once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.gpu import TARGET, feature_names, make_frame
from benchmarks.transfers import count_transfers, moved_once
from regflow.schemas.results import TrainResult
from regflow.tasks.train import describe_device, fit_linear, resolve_config, select_device

pytestmark = pytest.mark.gpu

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
SEED = pd.DataFrame({"x": [1.0, 2.0, 3.0, 3.5], "y": [2.0, 4.0, 6.0, 7.0]})
SAME = 1e-6  # relative: the bar for "the same coefficients"


def assert_same_fit(gpu: TrainResult, cpu: TrainResult, rel: float = SAME) -> None:
    """Coefficients and intercept agree to `rel`, relative to each one's own size.

    A value near 0 (the tutorial's intercept) is measured against the size it has in the
    units training saw instead: y_scale / x_scale for a coefficient, y_scale for the
    intercept, so its float noise is not read as a difference.
    """
    s = cpu.standardization
    names = cpu.features
    got = np.array([*(gpu.coefficients[n] for n in names), gpu.intercept])
    want = np.array([*(cpu.coefficients[n] for n in names), cpu.intercept])
    floor = np.array([*(s.y_scale / np.array(s.x_scale)), s.y_scale + abs(s.y_mean)])
    size = np.maximum(np.abs(want), floor)
    worst = float(np.max(np.abs(got - want) / size))
    assert worst <= rel, f"CUDA differs from CPU by {worst:.3g} (relative): {got} vs {want}"


def test_auto_picks_cuda_and_names_it() -> None:
    device = select_device("auto")
    assert device.type == "cuda"
    assert describe_device(device) == torch.cuda.get_device_name(device)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_preset_on_the_tutorials_data_matches_cpu(dtype: str) -> None:
    config = resolve_config("default", dtype=dtype)  # type: ignore[arg-type]
    gpu = fit_linear(SEED, ["x"], "y", config, CUDA)
    cpu = fit_linear(SEED, ["x"], "y", config, CPU)
    assert gpu.device == "cuda" and gpu.device_name == torch.cuda.get_device_name(CUDA)
    assert_same_fit(gpu, cpu)
    assert gpu.coefficients["x"] == pytest.approx(2.0, abs=1e-4)


def test_default_preset_on_nist_longley_float64_matches_cpu(nist_dir: Path) -> None:
    frame = pd.read_csv(nist_dir / "Longley.csv")
    features = [c for c in frame.columns if c != "y"]
    # The pipeline trains Longley in float64: its condition number is far above 1e3.
    config = resolve_config("default", dtype="float64")
    gpu = fit_linear(frame, features, "y", config, CUDA)
    cpu = fit_linear(frame, features, "y", config, CPU)
    assert gpu.dtype == "float64"
    assert_same_fit(gpu, cpu)


def test_default_preset_on_10m_rows_matches_cpu() -> None:
    frame = make_frame(10_000_000, 10, CUDA)  # drawn on the GPU: a second, not a minute
    names = feature_names(10)
    config = resolve_config("default")
    gpu = fit_linear(frame, names, TARGET, config, CUDA)
    cpu = fit_linear(frame, names, TARGET, config, CPU)
    assert (gpu.dtype, gpu.device) == ("float32", "cuda")
    assert_same_fit(gpu, cpu)
    torch.cuda.empty_cache()


def test_seed_preset_on_cuda_is_the_tutorial() -> None:
    config = resolve_config("seed")
    gpu = fit_linear(SEED, ["x"], "y", config, CUDA)
    cpu = fit_linear(SEED, ["x"], "y", config, CPU)
    assert (gpu.optimizer, gpu.lr, gpu.max_epochs) == ("sgd", 0.01, 100)
    assert gpu.epochs_run == 100 and len(gpu.losses) == 100
    assert gpu.stop_reason == "reached 100 epochs"
    # The same 100 SGD steps from the same seeded start: close, if not to the last bit.
    assert_same_fit(gpu, cpu, rel=1e-4)


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_data_goes_to_the_gpu_once(preset: str) -> None:
    frame = make_frame(1_000_000, 10, CUDA)
    names = feature_names(10)
    count_transfers(frame.iloc[:256], names, TARGET, preset, 2, CUDA)  # warm-up
    few = count_transfers(frame, names, TARGET, preset, 10, CUDA)
    many = count_transfers(frame, names, TARGET, preset, 100, CUDA)
    assert few.memcpy_htod >= 1, few  # the profiler saw the upload
    assert moved_once(few, many), (few, many)
