"""Train: a torch.nn.Linear fitted with MSE on the best device present."""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast
from uuid import UUID

import numpy as np
import pandas as pd
import torch
from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from regflow.errors import UsageError
from regflow.runtime import progress as run_progress
from regflow.runtime.cores import usable_cores
from regflow.schemas.results import Standardization, TrainResult
from regflow.tasks.outcomes import pipeline_task

# Re-exported: the flow, the CLI and the tests import the configuration from here.
from regflow.tasks.train_config import PRESETS as PRESETS
from regflow.tasks.train_config import TrainConfig as TrainConfig
from regflow.tasks.train_config import aims_at_optimum as aims_at_optimum
from regflow.tasks.train_config import choose_dtype as choose_dtype
from regflow.tasks.train_config import resolve_config as resolve_config
from regflow.tasks.train_loop import Evaluation, seeded_linear, train_linear
from regflow.tasks.train_loop import ProgressFn as ProgressFn
from regflow.tasks.train_loop import describe_device as describe_device
from regflow.tasks.train_loop import smaller_lr as smaller_lr

BLOCK_ROWS = 1 << 20
_C = TypeVar("_C")
_R = TypeVar("_R")


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
        # An empty or wrong CUDA_VISIBLE_DEVICES hides GPUs that nvidia-smi still lists.
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f"; CUDA_VISIBLE_DEVICES={hidden!r}" if name == "cuda" and hidden is not None else ""
        raise UsageError(
            f"device '{name}' is not available on this machine "
            f"(available: {', '.join(present)}{hint})",
            check="device_available",
        )
    raise UsageError(f"unknown device '{name}': use auto, cpu, cuda or mps", check="device")


def standardization(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    rows: np.ndarray | None,
    config: TrainConfig,
) -> Standardization:
    """Column statistics in float64 (two-pass); RMS scaling when there is no intercept.

    Both passes go block by block through reused buffers: full-length temporaries (a copy of
    the selected rows, the centred column, its squares) would each cost a trip through memory
    plus fresh pages, which at 10M rows took longer than training itself.
    """
    if not config.standardize:
        return Standardization(
            x_mean=[0.0] * len(features), x_scale=[1.0] * len(features), y_mean=0.0, y_scale=1.0
        )

    n = len(frame) if rows is None else len(rows)

    def stats(name: str) -> tuple[float, float]:
        gathered = np.empty(min(BLOCK_ROWS, n), dtype=np.float64)
        work = np.empty_like(gathered)
        values = frame[name].to_numpy(dtype=np.float64)
        total = sum(float(block.sum()) for _, block in _blocks(values, rows, gathered))
        mean = total / n if config.fit_intercept and n else 0.0
        # sum(c^2) = big^2 * ssq, with each block divided by its largest |c| before squaring
        # (LAPACK's scaled nrm2): plain squares of a column near 1e-300 underflow to 0, and
        # the column then kept scale 1 and vanished when rounded to float32.
        big, ssq = 0.0, 0.0
        for _, block in _blocks(values, rows, gathered):
            centred = work[: len(block)]
            np.subtract(block, mean, out=centred)
            np.abs(centred, out=centred)
            peak = float(centred.max()) if len(centred) else 0.0
            if peak == 0.0:
                continue
            np.divide(centred, peak, out=centred)
            # Squared in place and summed pairwise: no BLAS call, whose two threads stall
            # on a busy two-core machine (np.dot here ran 5-15x slower under load).
            np.multiply(centred, centred, out=centred)
            part = float(centred.sum())
            if peak > big:
                big, ssq = peak, ssq * (big / peak) ** 2 + part
            else:
                ssq += part * (peak / big) ** 2
        scale = big * math.sqrt(ssq / n) if n else 0.0
        return mean, scale if scale > 0 else 1.0

    *x, (y_mean, y_scale) = _per_column(stats, [*features, target], n)
    return Standardization(
        x_mean=[m for m, _ in x], x_scale=[s for _, s in x], y_mean=y_mean, y_scale=y_scale
    )


def _blocks(
    values: np.ndarray, rows: np.ndarray | None, buffer: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """(start, block) over the selected values: views, or rows gathered into `buffer`."""
    n = len(values) if rows is None else len(rows)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        if rows is None:
            yield start, values[start:stop]
        else:
            yield start, np.take(values, rows[start:stop], out=buffer[: stop - start])


def _scaled_matrix(
    frame: pd.DataFrame,
    names: list[str],
    rows: np.ndarray | None,
    mean: list[float],
    scale: list[float],
    dtype: type[np.floating],
) -> np.ndarray:
    # Built column by column so no float64 copy of the whole matrix is ever held; each block
    # is centred and scaled in a float64 buffer that stays in cache, then rounded once.
    n = len(frame) if rows is None else len(rows)
    # From torch's allocator, not numpy's: numpy asks for transparent huge pages, and where
    # the kernel compacts memory for them synchronously (THP defrag=madvise, a common
    # default) the first fill of 10M x 11 float32 took 0.8-1.1 s here instead of 0.3 s.
    torch_dtype = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    out = torch.empty((len(names), n), dtype=torch_dtype).numpy()

    def fill(j: int) -> None:
        gathered = np.empty(min(BLOCK_ROWS, n), dtype=np.float64)
        work = np.empty_like(gathered)
        column = frame[names[j]].to_numpy(dtype=np.float64)
        for start, block in _blocks(column, rows, gathered):
            centred = work[: len(block)]
            np.subtract(block, mean[j], out=centred)
            np.divide(
                centred, scale[j], out=out[j, start : start + len(block)], casting="same_kind"
            )

    _per_column(fill, list(range(len(names))), n)
    return out.T  # (n, d) view with column-major strides


def _per_column(work: Callable[[_C], _R], columns: list[_C], rows: int) -> list[_R]:
    """work(column) for each column, on every core: numpy's gathers and sums release the GIL.

    Each call keeps to its own column and buffers, so the results are the same as in order.
    """
    workers = min(len(columns), usable_cores(), 4)
    if workers < 2 or rows < BLOCK_ROWS:
        return [work(column) for column in columns]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, columns))


NORM_CHUNK = 8192
MEMO_SIZE = 64  # > max_eval of one L-BFGS step, so a repeated epoch is all hits


def _sum_of_squares(r: torch.Tensor) -> torch.Tensor:
    # One norm per chunk, then a sum over chunks: a single float32 accumulator over 10M values
    # loses ~1e-3 (relative), enough to mislead the line search; chunks keep ~1e-7.
    full = len(r) - len(r) % NORM_CHUNK
    total = torch.linalg.vector_norm(r[:full].view(-1, NORM_CHUNK), dim=1).square().sum()
    return total + torch.linalg.vector_norm(r[full:]).square() if full < len(r) else total


class _LinearMSE:
    """Full-batch MSE of y ~ Xw + b and its gradient, in two passes over the data.

    Autograd on nn.Linear + MSELoss allocates outputs, residuals and their gradients afresh at
    every evaluation (~8 passes over n rows plus page faults); the MSE of a linear model has a
    closed-form gradient, so one matrix-vector product gives the residuals r = Xw - y and a
    second one X^T r. The intercept enters through column sums computed once.

    Results are memoised on the parameters' exact bits: L-BFGS re-evaluates the point its line
    search ended on, and at float32's noise floor an epoch that cannot improve repeats the
    previous one's evaluations exactly, so the patience epochs before early stopping are free.
    """

    def __init__(self, xy: torch.Tensor, fit_intercept: bool) -> None:
        self.xy = xy  # (n, d + 1) column-major: features, then the target
        self.n, self.d = xy.shape[0], xy.shape[1] - 1
        self.xt = xy.T[: self.d]  # (d, n) contiguous rows, for X^T r
        # Column sums, once: sum(r) = sums . [w, -1] without another pass. Summed along the
        # contiguous rows of xy.T (pairwise); a float64 sum down xy's columns took 20x longer.
        self.sums = xy.T.sum(dim=1) if fit_intercept else None
        self.residual = torch.empty(self.n, dtype=xy.dtype, device=xy.device)
        self.v = torch.empty(self.d + 1, dtype=xy.dtype, device=xy.device)
        self.v[self.d] = -1.0
        self._memo: OrderedDict[bytes, Evaluation] = OrderedDict()

    @torch.no_grad()
    def __call__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> Evaluation:
        """(loss, d loss / d weight, d loss / d bias) at these parameters."""
        params = weight.detach().reshape(-1)
        if bias is not None:
            params = torch.cat([params, bias.detach().reshape(-1)])
        key = params.cpu().numpy().tobytes()  # the exact bits: a hit is what recomputing gives
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        n = self.n
        self.v[: self.d] = weight.detach().reshape(-1)
        r = torch.mv(self.xy, self.v, out=self.residual)  # r = Xw - y
        squares = _sum_of_squares(r)
        grad_w = torch.mv(self.xt, r)  # X^T r
        grad_b = None
        if bias is None or self.sums is None:
            loss = squares / n
        else:
            b = bias.detach().reshape(())
            total = self.sums @ self.v  # sum(r)
            loss = (squares + b * (2.0 * total + n * b)) / n  # mean((r + b)^2)
            grad_w += b * self.sums[: self.d]
            grad_b = ((2.0 / n) * (total + n * b)).reshape(1)
        grad_w *= 2.0 / n
        value = (loss, grad_w.reshape(weight.shape), grad_b)
        self._memo[key] = value
        if len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)
        return value


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
    # Features and target in one (n, d + 1) matrix: the residual is then one product.
    xy = torch.from_numpy(
        _scaled_matrix(
            frame,
            [*features, target],
            rows,
            [*scaling.x_mean, scaling.y_mean],
            [*scaling.x_scale, scaling.y_scale],
            np_dtype,
        )
    ).to(device)  # moved once, before the loop
    d = len(features)
    x, y = xy[:, :d], xy[:, d:]
    model = seeded_linear(d, config, device)
    loss_fn = torch.nn.MSELoss()
    # The tutorial's preset keeps the tutorial's autograd path (nn.MSELoss, backward); every
    # standardised preset uses the closed-form gradient of the same loss.
    objective = _LinearMSE(xy, config.fit_intercept) if config.standardize else None
    return train_linear(
        model,
        lambda: loss_fn(model(x), y),
        objective,
        features=features,
        scaling=scaling,
        config=config,
        device=device,
        started=started,
        progress=progress,
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
    # Called from a sync task, Prefect's sync_compatible functions return the value itself.
    artifact_id = cast(
        UUID,
        create_progress_artifact(
            progress=0.0, description=f"Training {model_name} on {device} ({config.optimizer})"
        ),
    )

    def report(epoch: int, epochs: int, loss: float) -> None:
        logger.info("epoch %d/%d loss %.6g", epoch, epochs, loss)
        update_progress_artifact(artifact_id=artifact_id, progress=100.0 * epoch / epochs)
        run_progress.update("train", epoch, f"epoch {epoch}/{epochs}, loss {loss:.4g}")

    logger.info(
        "training on %s (%s): %s, lr %g, up to %d epochs, %d rows x %d features",
        device,
        describe_device(device),
        config.optimizer,
        config.lr,
        config.epochs,
        len(frame) if rows is None else len(rows),
        len(features),
    )
    run_progress.start("train", f"train on {device} ({config.optimizer})", config.epochs)
    result = fit_linear(frame, features, target, config, device, rows=rows, progress=report)
    update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    run_progress.finish("train", f"{result.epochs_run} epochs, loss {result.losses[-1]:.4g}")
    logger.info(
        "%s after %d epochs; final loss %.6g",
        result.stop_reason,
        result.epochs_run,
        result.losses[-1],
    )
    return result


# Pure computation: no retries.
train_task = pipeline_task(_train_with_progress, name="train")
