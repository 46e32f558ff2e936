"""A torch-free linear predictor for `regflow models export --format joblib`.

This module imports numpy only (pandas only when a DataFrame is passed in), so
`joblib.load(FILE).predict(X)` works in a process that has neither torch nor the registry
loaded. joblib files are pickles: load them from trusted sources only.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PortableLinearModel:
    """y = X @ coef + intercept in original units, with the training standardisation kept."""

    def __init__(
        self,
        *,
        feature_names: list[str],
        target: str,
        coef: np.ndarray,
        intercept: float,
        x_mean: np.ndarray,
        x_scale: np.ndarray,
        y_mean: float,
        y_scale: float,
        source: dict[str, Any],
    ):
        self.feature_names = list(feature_names)
        self.target = target
        self.coef = np.asarray(coef, dtype=np.float64).copy()
        self.intercept = float(intercept)
        self.x_mean = np.asarray(x_mean, dtype=np.float64).copy()
        self.x_scale = np.asarray(x_scale, dtype=np.float64).copy()
        self.y_mean = float(y_mean)
        self.y_scale = float(y_scale)
        self.source = dict(source)  # registry reference, manifest hash, when exported
        # scikit-learn's conventions, so the object reads familiarly
        self.feature_names_in_ = np.asarray(self.feature_names, dtype=object)
        self.n_features_in_ = len(self.feature_names)

    def _matrix(self, x: Any) -> np.ndarray:
        if hasattr(x, "columns") and hasattr(x, "loc"):  # a pandas DataFrame
            missing = [c for c in self.feature_names if c not in x.columns]
            if missing:
                raise ValueError(f"missing feature column(s) {missing}")
            x = x.loc[:, self.feature_names]
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"expected a 2-D array with {self.n_features_in_} column(s) "
                f"{self.feature_names}, got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError("input contains NaN or infinite values")
        return arr

    def predict(self, x: Any) -> np.ndarray:
        """Predictions (float64) for a DataFrame (columns by name) or a 2-D array (in order)."""
        # Column by column in feature order, as regflow sums them: the same bits as scoring
        # through the registry (a matrix product would round in another order).
        matrix = self._matrix(x)
        out = np.full(matrix.shape[0], float(self.intercept))
        for j, weight in enumerate(np.asarray(self.coef, dtype=np.float64).tolist()):
            out += matrix[:, j] * weight
        return out

    def __repr__(self) -> str:
        ref = self.source.get("ref", "?")
        return f"PortableLinearModel({ref}, features={self.feature_names}, target={self.target!r})"
