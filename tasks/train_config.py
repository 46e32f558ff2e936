"""Training configurations: presets, option overrides and the choice of precision."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch

from regflow.errors import UsageError
from regflow.schemas.params import OptimizerName as Optimizer
from regflow.schemas.params import Preset

Precision = Literal["float32", "float64"]

DEFAULT_LR: dict[str, float] = {"sgd": 0.1, "adam": 0.05, "lbfgs": 1.0}
DEFAULT_EPOCHS: dict[str, int] = {"sgd": 2000, "adam": 2000, "lbfgs": 200}
# First-order optimizers wander before they settle: give them a longer window.
DEFAULT_PATIENCE: dict[str, int] = {"sgd": 100, "adam": 100, "lbfgs": 10}


@dataclass(frozen=True)
class TrainConfig:
    optimizer: Optimizer
    lr: float
    epochs: int
    standardize: bool
    fit_intercept: bool = True
    seed: int = 0
    tol: float = 1e-12  # relative improvement under which an epoch counts as stalled
    patience: int = 10  # stalled epochs in a row before stopping early
    early_stopping: bool = True
    dtype: Precision = "float32"


PRESETS: dict[str, TrainConfig] = {
    # Fast to the least-squares optimum: full-batch L-BFGS on standardised data.
    "default": TrainConfig(optimizer="lbfgs", lr=1.0, epochs=200, standardize=True),
    # The tutorial exactly: SGD, lr 0.01, 100 epochs, raw data, full batch, no early stop.
    "seed": TrainConfig(
        optimizer="sgd", lr=0.01, epochs=100, standardize=False, early_stopping=False
    ),
}


def resolve_config(
    preset: Preset = "default",
    *,
    optimizer: Optimizer | None = None,
    lr: float | None = None,
    epochs: int | None = None,
    fit_intercept: bool = True,
    seed: int = 0,
    dtype: Precision = "float32",
) -> TrainConfig:
    """A preset with the options the user set on top of it."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset '{preset}': choose one of {', '.join(PRESETS)}")
    config = replace(PRESETS[preset], fit_intercept=fit_intercept, seed=seed, dtype=dtype)
    if optimizer is not None and optimizer != config.optimizer:
        config = replace(
            config,
            optimizer=optimizer,
            lr=DEFAULT_LR[optimizer],
            epochs=DEFAULT_EPOCHS[optimizer],
            patience=DEFAULT_PATIENCE[optimizer],
        )
    if lr is not None:
        config = replace(config, lr=lr)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    return config


# float32 keeps ~7 digits: past these, its rounding is no longer small against the residuals.
FLOAT32_MAX_CONDITION = 1e3
FLOAT32_MIN_RESIDUAL_SHARE = 1e-5


def choose_dtype(
    requested: str, *, condition_number: float, r_squared: float, device: torch.device
) -> tuple[Precision, str]:
    """float32 by default; float64 where float32 cannot reach the least-squares optimum."""
    if requested in ("float32", "float64"):
        return requested, f"{requested} as requested"  # type: ignore[return-value]
    if device.type == "mps":
        return "float32", "float32: MPS has no float64"
    if condition_number > FLOAT32_MAX_CONDITION:
        return "float64", f"float64: the design's condition number {condition_number:.3g} > 1e3"
    if 1.0 - r_squared < FLOAT32_MIN_RESIDUAL_SHARE:
        return "float64", f"float64: a near-exact fit (1 - R^2 = {1.0 - r_squared:.2g})"
    return "float32", "float32 (default)"


def aims_at_optimum(config: TrainConfig) -> bool:
    """Whether the run trains until it converges, so its optimality gap is held to a tolerance.

    Early stopping marks such runs (the default preset, whatever is overridden on it). The
    seed preset replays the tutorial, a fixed 100 SGD epochs on raw data, which stops short
    of the optimum by design: its gap is reported, not checked.
    """
    return config.early_stopping
