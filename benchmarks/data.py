"""Synthetic datasets: a known linear relation plus noise, fixed seed, as .npy, CSV and Parquet."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SEED = 20240601
INTERCEPT = 3.0
NOISE_SD = 1.0
# Five decimals keep the CSV at ~9 characters a value (full doubles take ~19) and the same
# rounded numbers go into every format, so all contenders see identical data.
DECIMALS = 5
TARGET = "y"


def feature_names(features: int) -> list[str]:
    return [f"x{j}" for j in range(features)]


def true_coefficients(features: int) -> np.ndarray:
    return 2.0 - 0.1 * np.arange(features)


def _feature_location(features: int) -> tuple[np.ndarray, np.ndarray]:
    # Raw (unstandardised) features with means near 1 and spreads 1..2: the tutorial's SGD at
    # lr 0.01 stays stable on them (largest Hessian eigenvalue ~50, so lr * lambda < 2) but is
    # slow along the badly scaled intercept direction, as it is on the tutorial's own data.
    j = np.arange(features)
    return 1.0 + 0.1 * j, 1.0 + 0.1 * j


@dataclass(frozen=True)
class Dataset:
    rows: int
    features: int
    npy: str  # float64 (features + 1, rows): one column per array row, target last
    csv: str | None
    parquet: str | None
    optimum_mse: float  # float64 least-squares MSE with intercept, on all rows
    raw_bytes: int  # rows x columns x 8: the memory yardstick

    @property
    def names(self) -> list[str]:
        return feature_names(self.features)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Dataset:
        return cls(**json.loads(text))


def make_columns(rows: int, features: int, seed: int = SEED) -> np.ndarray:
    """(features + 1, rows) float64, one column per row of the array, target last, rounded.

    Column-major like a pandas frame's block, so a frame over it needs no copy.
    """
    rng = np.random.default_rng([seed, rows, features])
    data = np.empty((features + 1, rows), dtype=np.float64)
    mean, scale = _feature_location(features)
    beta = true_coefficients(features)
    y = data[features]
    rng.standard_normal(out=y)
    y *= NOISE_SD
    y += INTERCEPT
    for j in range(features):
        column = data[j]
        rng.standard_normal(out=column)
        column *= scale[j]
        column += mean[j]
        np.round(column, DECIMALS, out=column)
        y += beta[j] * column
    np.round(y, DECIMALS, out=y)
    return data


def optimum_mse(data: np.ndarray) -> float:
    """Least-squares MSE in float64 on centred columns (SVD), the reference for every gap."""
    features = data.shape[0] - 1
    mean = data.mean(axis=1)
    x = (data[:features] - mean[:features, np.newaxis]).T
    y = data[features] - mean[features]
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    residual = y - x @ coef
    return float(residual @ residual / len(y))


def mse_of(data: np.ndarray, coef: list[float], intercept: float) -> float:
    """MSE of a fitted line in float64, column by column (no copy of the matrix)."""
    features = data.shape[0] - 1
    residual = data[features] - intercept
    for j in range(features):
        residual -= coef[j] * data[j]
    return float(residual @ residual / len(residual))


def write_dataset(
    folder: Path, rows: int, features: int, *, files: bool = True, seed: int = SEED
) -> Dataset:
    """Write the .npy (always) and CSV + Parquet (when `files`) for one size."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"data-{rows}x{features}"
    data = make_columns(rows, features, seed)
    np.save(f"{stem}.npy", data)
    csv_path = parquet_path = None
    if files:
        table = pa.table(
            {name: data[j] for j, name in enumerate([*feature_names(features), TARGET])}
        )
        csv_path, parquet_path = f"{stem}.csv", f"{stem}.parquet"
        pacsv.write_csv(table, csv_path)
        pq.write_table(table, parquet_path)
        del table
    dataset = Dataset(
        rows=rows,
        features=features,
        npy=f"{stem}.npy",
        csv=csv_path,
        parquet=parquet_path,
        optimum_mse=optimum_mse(data),
        raw_bytes=rows * (features + 1) * 8,
    )
    Path(f"{stem}.json").write_text(dataset.to_json())
    return dataset
