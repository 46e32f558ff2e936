"""The epoch loop every trainer shares: optimizer, early stopping, divergence and the result.

The trainers differ only in where the loss comes from (the rows, or merged statistics); the
loop, its stopping rules, its errors and the mapping back to original units live here once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import cast

import numpy as np
import torch

from regflow.errors import TrainingDivergedError, UsageError
from regflow.runtime.cores import cpu_model
from regflow.schemas.results import Standardization, TrainResult
from regflow.tasks.train_config import TrainConfig

ProgressFn = Callable[[int, int, float], None]
# (loss, d loss / d weight, d loss / d bias) at the given weight and bias.
Evaluation = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
ClosedForm = Callable[[torch.Tensor, torch.Tensor | None], Evaluation]

REPORTS_PER_RUN = 20  # log and progress updates per run, whatever the epoch count
MAX_SUGGESTED_LR = 1.0  # the largest default lr (L-BFGS's)
GREW_TOO_MUCH = 10.0  # a final loss this many times the initial one: the lr made it diverge


def describe_device(device: torch.device) -> str:
    """What the device is, for the card and the CLI: the GPU's model, or the processor's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({cpu_model()})"
    return cpu_model()


def seeded_linear(d: int, config: TrainConfig, device: torch.device) -> torch.nn.Linear:
    """The nn.Linear to train, initialised from the run's seed without touching torch's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = torch.nn.Linear(d, 1, bias=config.fit_intercept)
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    return model.to(device=device, dtype=dtype)


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


def _diverged(
    epoch: int, loss: float, config: TrainConfig, start: float | None = None
) -> TrainingDivergedError:
    became = f"grew from {start:.4g} to {loss:.4g}" if start is not None else f"became {loss}"
    return TrainingDivergedError(
        f"training diverged: the loss {became} at epoch {epoch} "
        f"({config.optimizer}, lr={config.lr:g}); the learning rate is too large for this data: "
        f"try a smaller one, e.g. --lr {smaller_lr(config):g}"
    )


def smaller_lr(config: TrainConfig) -> float:
    """A finite learning rate to suggest: a tenth of this one, rounded, and at most 1.

    A tenth of a huge lr (1e308) is as useless as the lr itself, and of an infinite one is inf;
    every optimizer's default is at most 1.
    """
    tenth = float(f"{config.lr / 10:.1g}") if math.isfinite(config.lr) else math.inf
    return min(tenth, MAX_SUGGESTED_LR)


def train_linear(
    model: torch.nn.Linear,
    loss_of_model: Callable[[], torch.Tensor],
    closed_form: ClosedForm | None,
    *,
    features: list[str],
    scaling: Standardization,
    config: TrainConfig,
    device: torch.device,
    started: float,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Run the epochs on `model` and report it in original units.

    `loss_of_model()` is the differentiable loss at the model's parameters: the autograd path
    (the tutorial's, for the seed preset). `closed_form`, when given, supplies loss and
    gradient directly and is used instead (every standardised preset). `started` is the
    perf_counter reading the run's clock starts from.
    """
    optimizer = _make_optimizer(list(model.parameters()), config)

    def closure() -> torch.Tensor:
        if closed_form is None:
            optimizer.zero_grad()
            loss = loss_of_model()
            loss.backward()
            return loss
        loss, grad_w, grad_b = closed_form(model.weight, model.bias)
        model.weight.grad = grad_w.clone()
        if model.bias is not None and grad_b is not None:
            model.bias.grad = grad_b.clone()
        return loss

    losses: list[float] = []
    best, stalled, stop_reason = math.inf, 0, f"reached {config.epochs} epochs"
    every = max(1, config.epochs // REPORTS_PER_RUN)
    for epoch in range(1, config.epochs + 1):
        if config.optimizer == "lbfgs" and config.early_stopping and math.isfinite(best):
            # L-BFGS skips its line search when the directional derivative (about twice the
            # improvement its step promises) is below this: such an epoch would count as
            # stalled anyway, and at float32's noise floor the search costs ~6 passes.
            optimizer.param_groups[0]["tolerance_change"] = config.tol * best
        # torch's stubs type step(closure) as float; it returns the closure's tensor.
        try:
            stepped = cast(torch.Tensor, optimizer.step(closure))  # type: ignore[arg-type]
        except RuntimeError as err:
            # torch casts the lr to the parameters' dtype: an lr past float32's range fails so.
            if "overflow" not in str(err):
                raise
            raise _diverged(epoch, math.inf, config) from None
        loss = float(stepped.detach())  # the loss before this epoch's update
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
        final = float(
            loss_of_model() if closed_form is None else closed_form(model.weight, model.bias)[0]
        )
    if not math.isfinite(final):
        raise _diverged(len(losses), final, config)
    if final > GREW_TOO_MUCH * losses[0]:
        # Adam's steps are bounded by lr: a huge lr makes the loss explode without ever
        # reaching infinity, and early stopping would then return that model as done.
        raise _diverged(len(losses), final, config, start=losses[0])

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
        device_name=describe_device(device),
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
