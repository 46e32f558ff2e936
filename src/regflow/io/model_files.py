"""Reads and writes model weights as safetensors (no code runs on load) with numpy only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save_file


@dataclass(frozen=True)
class LinearWeights:
    """A fitted linear model in original units, plus the trained (scaled) parameters."""

    coef: np.ndarray  # float64 [d], original units
    intercept: float
    weight_trained: np.ndarray  # float32 [1, d], as nn.Linear holds it
    bias_trained: np.ndarray  # float32 [1]
    x_mean: np.ndarray  # float64 [d]
    x_scale: np.ndarray  # float64 [d]
    y_mean: float
    y_scale: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept


def save_weights(weights: LinearWeights, path: Path, metadata: dict[str, str]) -> None:
    tensors: dict[str, np.ndarray] = {
        "coef": np.ascontiguousarray(weights.coef, dtype=np.float64),
        "intercept": np.array([weights.intercept], dtype=np.float64),
        "linear.weight": np.ascontiguousarray(weights.weight_trained, dtype=np.float32),
        "linear.bias": np.ascontiguousarray(weights.bias_trained, dtype=np.float32),
        "x_mean": np.ascontiguousarray(weights.x_mean, dtype=np.float64),
        "x_scale": np.ascontiguousarray(weights.x_scale, dtype=np.float64),
        "y_mean": np.array([weights.y_mean], dtype=np.float64),
        "y_scale": np.array([weights.y_scale], dtype=np.float64),
    }
    save_file(tensors, str(path), metadata=metadata)


def weights_from_bytes(data: bytes) -> LinearWeights:
    """Parse model.safetensors from bytes (e.g. ones already checked against a manifest)."""
    t = load(data)
    return LinearWeights(
        coef=np.asarray(t["coef"], dtype=np.float64),
        intercept=float(t["intercept"][0]),
        weight_trained=t["linear.weight"],
        bias_trained=t["linear.bias"],
        x_mean=np.asarray(t["x_mean"], dtype=np.float64),
        x_scale=np.asarray(t["x_scale"], dtype=np.float64),
        y_mean=float(t["y_mean"][0]),
        y_scale=float(t["y_scale"][0]),
    )


def load_weights(path: Path) -> LinearWeights:
    return weights_from_bytes(Path(path).read_bytes())
