"""Train: a torch.nn.Linear fitted with MSE on the best device present."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE

from regflow.errors import TrainingDivergedError, UsageError
from schemas.results import Standardization, TrainResult
from tasks.outcomes import expected_failures_as_state

Optimizer = Literal["sgd", "adam", "lbfgs"]
DeviceName = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["float32", "float64"]
ProgressFn = Callable[[int, int, float], None]

DEFAULT_LR: dict[str, float] = {"sgd": 0.1, "adam": 0.05, "lbfgs": 1.0}
DEFAULT_EPOCHS: dict[str, int] = {"sgd": 2000, "adam": 2000, "lbfgs": 200}
# First-order optimizers wander before they settle: give them a longer window.
DEFAULT_PATIENCE: dict[str, int] = {"sgd": 100, "adam": 100, "lbfgs": 10}
REPORTS_PER_RUN = 20  # log and progress updates per run, whatever the epoch count
BLOCK_ROWS = 1 << 20


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
    preset: str = "default",
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


def select_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; naming an absent device is a usage error."""
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if (name == "cuda" and cuda) or (name == "mps" and mps):
        return torch.device(name)
    if name in ("cuda", "mps"):
        present = ["cpu"] + (["cuda"] if cuda else []) + (["mps"] if mps else [])
        raise UsageError(
            f"device '{name}' is not available on this machine (available: {', '.join(present)})",
            check="device_available",
        )
    raise UsageError(f"unknown device '{name}': use auto, cpu, cuda or mps", check="device")


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


def standardization(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    rows: np.ndarray | None,
    config: TrainConfig,
) -> Standardization:
    """Column statistics in float64 (two-pass); RMS scaling when there is no intercept."""
    if not config.standardize:
        return Standardization(
            x_mean=[0.0] * len(features), x_scale=[1.0] * len(features), y_mean=0.0, y_scale=1.0
        )

    def stats(name: str) -> tuple[float, float]:
        values = frame[name].to_numpy(dtype=np.float64)
        if rows is not None:
            values = values[rows]
        mean = float(values.mean()) if config.fit_intercept else 0.0
        scale = float(np.sqrt(np.mean(np.square(values - mean))))
        return mean, scale if scale > 0 else 1.0

    x = [stats(name) for name in features]
    y_mean, y_scale = stats(target)
    return Standardization(
        x_mean=[m for m, _ in x], x_scale=[s for _, s in x], y_mean=y_mean, y_scale=y_scale
    )


def _scaled_matrix(
    frame: pd.DataFrame,
    names: list[str],
    rows: np.ndarray | None,
    mean: list[float],
    scale: list[float],
    dtype: type[np.floating],
) -> np.ndarray:
    # Built column by column so no float64 copy of the whole matrix is ever held.
    n = len(frame) if rows is None else len(rows)
    out = np.empty((len(names), n), dtype=dtype)
    for j, name in enumerate(names):
        column = frame[name].to_numpy(dtype=np.float64)
        for start in range(0, n, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, n)
            block = column[start:stop] if rows is None else column[rows[start:stop]]
            out[j, start:stop] = (block - mean[j]) / scale[j]
    return out.T  # (n, d) view with column-major strides


def _make_optimizer(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    if config.optimizer == "lbfgs":
        # One L-BFGS iteration per epoch; the curvature history carries across epochs.
        return torch.optim.LBFGS(
            params,
            lr=config.lr,
            max_iter=1,
            max_eval=25,
            history_size=20,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )
    raise UsageError(f"unknown optimizer '{config.optimizer}': use sgd, adam or lbfgs")


def _diverged(epoch: int, loss: float, config: TrainConfig) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"training diverged: the loss became {loss} at epoch {epoch} "
        f"({config.optimizer}, lr={config.lr:g}); the learning rate is too large for this data: "
        f"try a smaller one, e.g. --lr {config.lr / 10:g}"
    )


def fit_linear(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    config: TrainConfig,
    device: torch.device,
    *,
    rows: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Fit y = Xw + b with torch.nn.Linear; `rows` selects the training rows (all by default)."""
    started = time.perf_counter()
    scaling = standardization(frame, features, target, rows, config)
    np_dtype = np.float64 if config.dtype == "float64" else np.float32
    x = torch.from_numpy(
        _scaled_matrix(frame, features, rows, scaling.x_mean, scaling.x_scale, np_dtype)
    )
    y = torch.from_numpy(
        _scaled_matrix(frame, [target], rows, [scaling.y_mean], [scaling.y_scale], np_dtype)
    )
    x, y = x.to(device), y.to(device)  # moved once, before the loop
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = torch.nn.Linear(len(features), 1, bias=config.fit_intercept)
    model.to(device=device, dtype=x.dtype)
    loss_fn = torch.nn.MSELoss()
    optimizer = _make_optimizer(list(model.parameters()), config)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    losses: list[float] = []
    best, stalled, stop_reason = math.inf, 0, f"reached {config.epochs} epochs"
    every = max(1, config.epochs // REPORTS_PER_RUN)
    for epoch in range(1, config.epochs + 1):
        loss = float(optimizer.step(closure).detach())  # the loss before this epoch's update
        if not math.isfinite(loss):
            raise _diverged(epoch, loss, config)
        losses.append(loss)
        if config.early_stopping:
            improvement = (best - loss) / best if math.isfinite(best) and best > 0 else 1.0
            stalled = stalled + 1 if improvement < config.tol else 0
            best = min(best, loss)
            if loss == 0.0 or stalled >= config.patience:
                stop_reason = (
                    "loss reached zero"
                    if loss == 0.0
                    else f"early stop: relative improvement below {config.tol:g} "
                    f"for {config.patience} epochs"
                )
                break
        if progress is not None and (epoch % every == 0 or epoch == config.epochs):
            progress(epoch, config.epochs, loss)
    with torch.no_grad():
        final = float(loss_fn(model(x), y))
    if not math.isfinite(final):
        raise _diverged(len(losses), final, config)

    weight = model.weight.detach().to("cpu", torch.float64).numpy().reshape(-1)
    bias = float(model.bias.detach().cpu()) if model.bias is not None else 0.0
    x_mean, x_scale = np.array(scaling.x_mean), np.array(scaling.x_scale)
    coef = weight * scaling.y_scale / x_scale
    intercept = (
        scaling.y_mean + scaling.y_scale * bias - float(coef @ x_mean)
        if config.fit_intercept
        else 0.0
    )
    return TrainResult(
        features=list(features),
        device=str(device),
        optimizer=config.optimizer,
        dtype=config.dtype,
        lr=config.lr,
        epochs_run=len(losses),
        max_epochs=config.epochs,
        stop_reason=stop_reason,
        losses=losses,
        final_loss=final,
        fit_intercept=config.fit_intercept,
        standardization=scaling,
        weight_trained=weight.tolist(),
        bias_trained=bias,
        coefficients=dict(zip(features, coef.tolist(), strict=True)),
        intercept=intercept,
        seconds=time.perf_counter() - started,
    )


def _train_with_progress(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    config: TrainConfig,
    device_name: str,
    rows: np.ndarray | None,
    model_name: str,
) -> TrainResult:
    logger = get_run_logger()
    device = select_device(device_name)
    artifact_id = create_progress_artifact(
        progress=0.0, description=f"Training {model_name} on {device} ({config.optimizer})"
    )

    def report(epoch: int, epochs: int, loss: float) -> None:
        logger.info("epoch %d/%d loss %.6g", epoch, epochs, loss)
        update_progress_artifact(artifact_id=artifact_id, progress=100.0 * epoch / epochs)

    logger.info(
        "training on %s: %s, lr %g, up to %d epochs, %d rows x %d features",
        device,
        config.optimizer,
        config.lr,
        config.epochs,
        len(frame) if rows is None else len(rows),
        len(features),
    )
    result = fit_linear(frame, features, target, config, device, rows=rows, progress=report)
    update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    logger.info(
        "%s after %d epochs; final loss %.6g",
        result.stop_reason,
        result.epochs_run,
        result.losses[-1],
    )
    return result


# Pure computation: no retries.
train_task = task(
    expected_failures_as_state(_train_with_progress),
    name="train",
    cache_policy=NONE,
    persist_result=False,
)
