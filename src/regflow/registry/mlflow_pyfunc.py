"""The pyfunc model of `regflow models export --format mlflow` (MLflow "models from code").

regflow never imports this file. `mlflow.pyfunc.save_model(python_model=<this file>)` copies
it into the model directory, and `mlflow.pyfunc.load_model` runs that copy. So it imports only
MLflow, numpy and pandas: loading the model needs no regflow, and no pickle is involved.
The weights come from the JSON artifact `linear` (feature order, coef, intercept).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class LinearPyfunc(PythonModel):
    """predicted = intercept + sum_j coef[j] * frame[features[j]], float64."""

    features: list[str]
    coef: list[float]
    intercept: float

    def load_context(self, context: Any) -> None:
        spec = json.loads(Path(context.artifacts["linear"]).read_text())
        self.features = [str(f) for f in spec["features"]]
        self.coef = [float(c) for c in spec["coef"]]
        self.intercept = float(spec["intercept"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        frame = pd.DataFrame(model_input)
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"missing feature column(s) {missing}")
        columns = [frame[f].to_numpy(dtype=np.float64) for f in self.features]
        if not all(np.isfinite(c).all() for c in columns):
            raise ValueError("input contains NaN or infinite values")
        # Column by column in feature order, as regflow sums them: the same bits as
        # Predictor.predict (a matrix product would round in another order).
        out = np.full(len(frame), self.intercept, dtype=np.float64)
        for weight, column in zip(self.coef, columns, strict=True):
            out += column * weight
        return out


mlflow.models.set_model(LinearPyfunc())
