"""The contenders, each run inside its own child process (see child.py).

Each function prepares its inputs in the form its user would have them (not timed), then times
only the work inside `measured()`. Coefficients come back so the parent can compute every
contender's MSE against the same float64 optimum.
"""

from __future__ import annotations

import atexit
import gc
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.data import TARGET, Dataset, feature_names, write_dataset
from benchmarks.measure import measured

Result = dict[str, Any]

TUTORIAL_EPOCHS = 100
TUTORIAL_LR = 0.01


WARM_ROWS = 256


def _load(dataset: Dataset) -> np.ndarray:
    """(features + 1, rows): one column per array row, as in a pandas frame's block."""
    return np.load(dataset.npy)


def _fit_result(m: Any, coef: np.ndarray, intercept: float, **extra: Any) -> Result:
    return {
        "seconds": m.seconds,
        "peak_rss": m.peak_rss,
        "coef": [float(c) for c in np.ravel(coef)],
        "intercept": float(intercept),
        **extra,
    }


# --- training -----------------------------------------------------------------------------
# Each contender first runs once on a few rows, untimed: first calls pay one-off costs
# (torch.optim imports torch._dynamo, ~1 s; scipy and sklearn load LAPACK wrappers lazily)
# that a fresh process pays once, whatever the data size.


def _tutorial_loop(x_train: np.ndarray, y_train: np.ndarray, epochs: int) -> tuple[Any, float]:
    """The tutorial's code: its model class, MSELoss, SGD lr 0.01, from_numpy every epoch."""
    import torch

    class linearRegression(torch.nn.Module):
        def __init__(self, inputSize: int, outputSize: int) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(inputSize, outputSize)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.linear(x)
            return out

    torch.manual_seed(0)  # the tutorial does not seed; we do, for repeatable numbers
    model = linearRegression(x_train.shape[1], 1)
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR)
    loss = None
    for _epoch in range(epochs):
        inputs = torch.from_numpy(x_train)
        labels = torch.from_numpy(y_train)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        loss.item()  # the tutorial prints it every epoch
    return model, float(loss.item()) if loss is not None else float("nan")


def train_tutorial(dataset: Dataset) -> Result:
    """The tutorial's loop as written: float32 numpy data, tensors rebuilt every epoch."""
    data = _load(dataset)
    d = dataset.features
    x_train = np.ascontiguousarray(data[:d].T, dtype=np.float32)  # (n, d), as the tutorial
    y_train = np.ascontiguousarray(data[d:].T, dtype=np.float32)  # (n, 1)
    del data
    gc.collect()
    _tutorial_loop(x_train[:WARM_ROWS].copy(), y_train[:WARM_ROWS].copy(), 1)
    with measured() as m:
        model, final_loss = _tutorial_loop(x_train, y_train, TUTORIAL_EPOCHS)
    weight = model.linear.weight.detach().double().numpy()
    bias = float(model.linear.bias.detach().double())
    return _fit_result(m, weight, bias, epochs=TUTORIAL_EPOCHS, final_loss=final_loss)


def train_regflow(dataset: Dataset) -> Result:
    """regflow's trainer, default preset, on a float64 frame like the one validation returns."""
    import pandas as pd

    from regflow.tasks.train import fit_linear, resolve_config, select_device

    data = _load(dataset)
    names = [*dataset.names, TARGET]
    frame = pd.DataFrame(data.T, columns=names, copy=False)  # one block over the columns
    config = resolve_config("default")
    device = select_device("cpu")
    fit_linear(frame.head(WARM_ROWS), dataset.names, TARGET, config, device)
    gc.collect()
    with measured() as m:
        result = fit_linear(frame, dataset.names, TARGET, config, device)
    coef = np.array([result.coefficients[f] for f in dataset.names])
    return _fit_result(
        m,
        coef,
        result.intercept,
        epochs=result.epochs_run,
        dtype=result.dtype,
        stop_reason=result.stop_reason,
    )


def train_sklearn(dataset: Dataset) -> Result:
    """scikit-learn on the arrays a frame gives (frame.to_numpy() is column-major too)."""
    from sklearn.linear_model import LinearRegression

    data = _load(dataset)
    d = dataset.features
    x, y = data[:d].T, data[d]
    LinearRegression().fit(x[:WARM_ROWS], y[:WARM_ROWS])
    gc.collect()
    with measured() as m:
        model = LinearRegression().fit(x, y)
    return _fit_result(m, model.coef_, float(model.intercept_))


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """numpy least squares as a user writes it: a column of ones, then lstsq."""
    design = np.column_stack([x, np.ones(len(x))])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def train_lstsq(dataset: Dataset) -> Result:
    data = _load(dataset)
    d = dataset.features
    x, y = data[:d].T, data[d]
    _lstsq(x[:WARM_ROWS], y[:WARM_ROWS])
    gc.collect()
    with measured() as m:
        solution = _lstsq(x, y)
    return _fit_result(m, solution[:d], float(solution[d]))


# --- ingestion ----------------------------------------------------------------------------


def _ingest_result(m: Any, rows: int, **extra: Any) -> Result:
    return {"seconds": m.seconds, "peak_rss": m.peak_rss, "rows_read": rows, **extra}


def _warm_files(dataset: Dataset) -> Dataset:
    """A few rows of the same shape as CSV and Parquet, for the untimed first call."""
    folder = Path(tempfile.mkdtemp(prefix="regflow-bench-warm-"))
    atexit.register(shutil.rmtree, folder, True)
    return write_dataset(folder, WARM_ROWS, dataset.features)


def _pandas_read(source: str) -> int:
    import pandas as pd

    frame = pd.read_csv(source) if source.endswith(".csv") else pd.read_parquet(source)
    return len(frame)


def _pandas_ingest(dataset: Dataset, source: str, warm: str) -> Result:
    _pandas_read(warm)
    gc.collect()
    with measured() as m:
        rows = _pandas_read(source)
    return _ingest_result(m, rows)


def ingest_pandas_csv(dataset: Dataset) -> Result:
    assert dataset.csv is not None
    warm = _warm_files(dataset)
    return _pandas_ingest(dataset, dataset.csv, str(warm.csv))


def ingest_pandas_parquet(dataset: Dataset) -> Result:
    assert dataset.parquet is not None
    warm = _warm_files(dataset)
    return _pandas_ingest(dataset, dataset.parquet, str(warm.parquet))


def _regflow_read(source: str) -> tuple[int, bool, int]:
    """regflow's first three steps, as the flow runs them (features: every numeric column)."""
    from regflow.tasks.gate import correlation_gate
    from regflow.tasks.ingest import read_table
    from regflow.tasks.validate import validate_dataset

    loaded = read_table(source)
    valid = validate_dataset(loaded, TARGET, None)
    gate = correlation_gate(
        valid.frame, valid.features, TARGET, min_abs_r=0.5, alpha=0.05, fit_intercept=True
    )
    return len(valid.frame), bool(gate.passed), len(valid.features)


def _regflow_ingest(source: str, warm: str) -> Result:
    _regflow_read(warm)
    gc.collect()
    with measured() as m:
        rows, passed, features = _regflow_read(source)
    return _ingest_result(m, rows, passed=passed, features=features)


def ingest_regflow_csv(dataset: Dataset) -> Result:
    assert dataset.csv is not None
    return _regflow_ingest(dataset.csv, str(_warm_files(dataset).csv))


def ingest_regflow_parquet(dataset: Dataset) -> Result:
    assert dataset.parquet is not None
    return _regflow_ingest(dataset.parquet, str(_warm_files(dataset).parquet))


CONTENDERS: dict[str, Callable[[Dataset], Result]] = {
    "train.tutorial": train_tutorial,
    "train.regflow": train_regflow,
    "train.sklearn": train_sklearn,
    "train.lstsq": train_lstsq,
    "ingest.pandas_csv": ingest_pandas_csv,
    "ingest.regflow_csv": ingest_regflow_csv,
    "ingest.pandas_parquet": ingest_pandas_parquet,
    "ingest.regflow_parquet": ingest_regflow_parquet,
}

__all__ = ["CONTENDERS", "feature_names"]
