"""The contenders, each run inside its own child process (see child.py).

Each function prepares its inputs in the form its user would have them (not timed), then times
only the work inside `measured()`. Coefficients come back so the parent can compute every
contender's MSE against the same float64 optimum.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.data import TARGET, Dataset, feature_names
from benchmarks.measure import measured

Result = dict[str, Any]

TUTORIAL_EPOCHS = 100
TUTORIAL_LR = 0.01


def _load(dataset: Dataset) -> np.ndarray:
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


def train_tutorial(dataset: Dataset) -> Result:
    """The tutorial's loop as written: float32 numpy data, tensors rebuilt every epoch."""
    import torch

    class linearRegression(torch.nn.Module):
        def __init__(self, inputSize: int, outputSize: int) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(inputSize, outputSize)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.linear(x)
            return out

    data = _load(dataset)
    d = dataset.features
    x_train = np.ascontiguousarray(data[:, :d], dtype=np.float32)
    y_train = np.ascontiguousarray(data[:, d:], dtype=np.float32)
    del data
    gc.collect()
    torch.manual_seed(0)  # the tutorial does not seed; we do, for repeatable numbers
    model = linearRegression(d, 1)
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR)
    losses = []
    with measured() as m:
        for _epoch in range(TUTORIAL_EPOCHS):
            inputs = torch.from_numpy(x_train)
            labels = torch.from_numpy(y_train)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())  # the tutorial prints this every epoch
    weight = model.linear.weight.detach().double().numpy()
    bias = float(model.linear.bias.detach().double())
    return _fit_result(m, weight, bias, epochs=TUTORIAL_EPOCHS, final_loss=losses[-1])


def train_regflow(dataset: Dataset) -> Result:
    """regflow's trainer, default preset, on a frame like the one validation hands it."""
    import pandas as pd

    from tasks.train import fit_linear, resolve_config, select_device

    data = _load(dataset)
    names = [*dataset.names, TARGET]
    frame = pd.DataFrame({name: data[:, j].copy() for j, name in enumerate(names)})
    del data
    gc.collect()
    config = resolve_config("default")
    device = select_device("cpu")
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
    from sklearn.linear_model import LinearRegression

    data = _load(dataset)
    d = dataset.features
    x = np.ascontiguousarray(data[:, :d])
    y = data[:, d].copy()
    del data
    gc.collect()
    with measured() as m:
        model = LinearRegression().fit(x, y)
    return _fit_result(m, model.coef_, float(model.intercept_))


def train_lstsq(dataset: Dataset) -> Result:
    """numpy least squares as a user writes it: a column of ones, then lstsq."""
    data = _load(dataset)
    d = dataset.features
    x = np.ascontiguousarray(data[:, :d])
    y = data[:, d].copy()
    del data
    gc.collect()
    with measured() as m:
        design = np.column_stack([x, np.ones(len(x))])
        solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return _fit_result(m, solution[:d], float(solution[d]))


# --- ingestion ----------------------------------------------------------------------------


def _ingest_result(m: Any, rows: int, **extra: Any) -> Result:
    return {"seconds": m.seconds, "peak_rss": m.peak_rss, "rows_read": rows, **extra}


def ingest_pandas_csv(dataset: Dataset) -> Result:
    import pandas as pd

    with measured() as m:
        frame = pd.read_csv(dataset.csv)
    return _ingest_result(m, len(frame))


def ingest_pandas_parquet(dataset: Dataset) -> Result:
    import pandas as pd

    with measured() as m:
        frame = pd.read_parquet(dataset.parquet)
    return _ingest_result(m, len(frame))


def _regflow_ingest(source: str) -> Result:
    from tasks.gate import correlation_gate
    from tasks.ingest import read_table
    from tasks.validate import validate_dataset

    with measured() as m:
        loaded = read_table(source)
        valid = validate_dataset(loaded, TARGET, None)
        gate = correlation_gate(
            valid.frame, valid.features, TARGET, min_abs_r=0.5, alpha=0.05, fit_intercept=True
        )
    return _ingest_result(
        m, len(valid.frame), passed=bool(gate.passed), features=len(valid.features)
    )


def ingest_regflow_csv(dataset: Dataset) -> Result:
    assert dataset.csv is not None
    return _regflow_ingest(dataset.csv)


def ingest_regflow_parquet(dataset: Dataset) -> Result:
    assert dataset.parquet is not None
    return _regflow_ingest(dataset.parquet)


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
