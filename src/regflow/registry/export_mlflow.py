"""`--format mlflow`: an MLflow model directory (pyfunc flavour) with signature and example.

The model is MLflow's "models from code": mlflow_pyfunc.py (numpy, pandas and MLflow only)
is copied into the directory, and the weights go beside it as a JSON artifact. So loading
needs neither regflow nor unpickling. The signature names each feature as a double column;
the input example is two rows from the training standardisation, each feature's mean and
mean plus one standard deviation (0 and 1 for a run that did not standardise). The source
record is the MLmodel file's `metadata.regflow_source`.

Requirements are given explicitly: MLflow would otherwise infer them by loading the model in
a subprocess, which is slow and would list whatever this process happens to have imported.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regflow.errors import UsageError
from regflow.registry.export import ExportResult
from regflow.registry.predictor import Predictor

CODE = Path(__file__).with_name("mlflow_pyfunc.py")
ARTIFACT = "linear"


def _mlflow_requirement() -> str:
    """The installed MLflow distribution (mlflow or mlflow-skinny), pinned."""
    for dist in ("mlflow", "mlflow-skinny"):
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    import mlflow

    return f"mlflow=={mlflow.__version__}"


def input_example(predictor: Predictor) -> pd.DataFrame:
    w = predictor.weights
    rows = np.vstack([w.x_mean, w.x_mean + w.x_scale]).astype(np.float64)
    return pd.DataFrame(rows, columns=predictor.feature_names)


def signature(predictor: Predictor) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    return ModelSignature(
        inputs=Schema([ColSpec(DataType.double, name) for name in predictor.feature_names]),
        outputs=Schema([ColSpec(DataType.double, predictor.target)]),
    )


def export_mlflow(predictor: Predictor, out: Path, source: dict[str, Any]) -> ExportResult:
    """Write the model directory `out`, which must not exist yet (built aside, then renamed)."""
    import mlflow

    out = Path(out)
    if out.exists() or out.is_symlink():
        raise UsageError(
            f"output path {out} already exists; the mlflow export writes a new directory",
            check="output_path",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "features": predictor.feature_names,
        "coef": [float(c) for c in predictor.weights.coef],
        "intercept": float(predictor.weights.intercept),
        "target": predictor.target,
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    # MLflow logs each step at INFO on stderr; an export reports once, itself.
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        weights = staging / f"{ARTIFACT}.json"
        weights.write_text(json.dumps(spec, indent=2) + "\n")  # repr floats: exact round trip
        model_dir = staging / "model"
        mlflow.pyfunc.save_model(
            str(model_dir),
            python_model=str(CODE),
            artifacts={ARTIFACT: str(weights)},
            signature=signature(predictor),
            input_example=input_example(predictor),
            metadata={"regflow_source": dict(source)},
            pip_requirements=[
                _mlflow_requirement(),
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
            ],
        )
        model_dir.rename(out)
    finally:
        logger.setLevel(level)
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult("mlflow", out, source)
