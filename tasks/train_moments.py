"""Train the same nn.Linear from merged statistics instead of rows.

A partitioned run merges column means and centred cross products of [X, y] over its training
rows; the MSE and its gradient depend on the data only through them, so each epoch costs
O(d^2) on the device whatever the row count. The epochs, stopping rules and result are
fit_linear's (train_loop.train_linear); only the loss comes from regflow.stats.moments_mse.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from regflow.schemas.results import TrainResult
from regflow.stats.moments_mse import MomentsMSE, standardization_from_moments
from regflow.tasks.train_config import TrainConfig
from regflow.tasks.train_loop import ProgressFn, seeded_linear, train_linear


def fit_linear_from_moments(
    n: int,
    mean: np.ndarray,
    cross: np.ndarray,
    features: list[str],
    config: TrainConfig,
    device: torch.device,
    *,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Fit y = Xw + b as fit_linear does on the rows these moments summarise.

    `mean` is the (d + 1,) column means of [X..., y] over the n training rows and `cross` the
    (d + 1, d + 1) centred cross products, sum((v - mean)(v - mean)^T), both float64. The
    seed preset takes its gradient through autograd as the tutorial's loop does, so SGD
    follows the same trajectory within float rounding; standardised presets use the closed
    form.
    """
    started = time.perf_counter()
    mean = np.asarray(mean, dtype=np.float64)
    cross = np.asarray(cross, dtype=np.float64)
    if len(mean) != len(features) + 1:
        raise ValueError(f"{len(mean)} column means for {len(features)} features and a target")
    scaling = standardization_from_moments(
        n, mean, cross, standardize=config.standardize, fit_intercept=config.fit_intercept
    )
    model = seeded_linear(len(features), config, device)
    objective = MomentsMSE(
        n,
        mean,
        cross,
        scaling,
        fit_intercept=config.fit_intercept,
        dtype=model.weight.dtype,
        device=device,
    )
    return train_linear(
        model,
        lambda: objective.loss(model.weight, model.bias),
        objective if config.standardize else None,
        features=features,
        scaling=scaling,
        config=config,
        device=device,
        started=started,
        progress=progress,
    )
