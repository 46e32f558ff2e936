"""Builds valid run folders (model.json + model.safetensors + predictions + a plot) for tests.

Importable from subprocesses too, so concurrent-registration tests can build their own runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from regflow.io.model_files import LinearWeights, save_weights
from regflow.schemas.model_card import (
    CARD_FILE,
    PREDICTIONS_FILE,
    WEIGHTS_FILE,
    Coefficients,
    ColumnSpec,
    DataInfo,
    ModelCard,
    Signature,
)
from regflow.schemas.results import (
    Evaluation,
    FeatureCorrelation,
    GateReport,
    SplitMetrics,
    Standardization,
)

# Smallest valid PNG header is enough: nothing in the registry decodes plots.
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def sample_frame(features: list[str], n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {f: rng.normal(loc=i + 1.0, scale=2.0, size=n) for i, f in enumerate(features)}
    )


def _metrics(split: str, n: int, mse: float, r2: float) -> SplitMetrics:
    return SplitMetrics(split=split, n=n, mse=mse, rmse=mse**0.5, mae=mse**0.5 * 0.8, r2=r2)


def make_run(
    root: Path,
    *,
    coef: list[float] | None = None,
    intercept: float = 0.5,
    features: list[str] | None = None,
    target: str = "y",
    name: str = "demo",
    mse: float = 0.25,
    r2: float = 0.9,
    flow_run_id: str | None = "00000000-0000-0000-0000-000000000001",
    data: pd.DataFrame | None = None,
) -> Path:
    """Write a run folder like the training flow's publish step and return its path."""
    features = features or ["x"]
    coef = coef if coef is not None else [2.0 + 0.1 * i for i in range(len(features))]
    root.mkdir(parents=True, exist_ok=True)
    frame = data if data is not None else sample_frame(features)
    x = frame[features].to_numpy(dtype=np.float64)
    coef_arr = np.asarray(coef, dtype=np.float64)
    y_pred = x @ coef_arr + intercept
    x_mean, x_scale = x.mean(axis=0), x.std(axis=0) + 1e-12
    weights = LinearWeights(
        coef=coef_arr,
        intercept=intercept,
        weight_trained=(coef_arr * x_scale).astype(np.float32).reshape(1, -1),
        bias_trained=np.array([0.0], dtype=np.float32),
        x_mean=x_mean,
        x_scale=x_scale,
        y_mean=float(y_pred.mean()),
        y_scale=1.0,
    )
    save_weights(weights, root / WEIGHTS_FILE, metadata={"format": "pt"})
    n = len(frame)
    metrics = {"train": _metrics("train", n, mse, r2), "all": _metrics("all", n, mse, r2)}
    card = ModelCard(
        name=name,
        created_at="2026-01-01T00:00:00+00:00",
        signature=Signature(
            features=[ColumnSpec(name=f) for f in features], target=ColumnSpec(name=target)
        ),
        fit_intercept=True,
        standardization=Standardization(
            x_mean=list(x_mean), x_scale=list(x_scale), y_mean=float(y_pred.mean()), y_scale=1.0
        ),
        coefficients=Coefficients(
            weights=dict(zip(features, coef, strict=True)), intercept=intercept
        ),
        metrics=metrics,
        evaluation=Evaluation(
            metrics=metrics,
            fit_split="all",
            holdout_note="no holdout: too few rows",
            ols_coefficients=dict(zip(features, coef, strict=True)),
            ols_intercept=intercept,
            ols_mse=mse,
            model_mse=mse,
            optimality_gap=0.0,
            optimality_gap_abs=0.0,
            reference_condition_number=1.0,
            reference_trusted=True,
        ),
        gate=GateReport(
            n_rows=n,
            features=[
                FeatureCorrelation(feature=f, r=0.99, p_value=1e-6, spearman=0.98) for f in features
            ],
            multiple_r=0.99,
            multiple_r_p_value=1e-6,
            statistic="max_abs_r",
            value=0.99,
            p_value=1e-6,
            min_abs_r=0.3,
            alpha=0.05,
            condition_number=1.0,
            passed=True,
            reason="strong enough",
        ),
        data=DataInfo(
            source="data/demo.csv",
            format="csv",
            sha256="ab" * 32,
            rows=n,
            columns=[*features, target],
        ),
        training={"device": "cpu", "optimizer": "sgd", "epochs": 100, "stop_reason": "max_epochs"},
        parameters={"data": "data/demo.csv", "lr": 0.01, "epochs": 100},
        library_versions={"python": "3.11", "numpy": np.__version__},
        flow_run_id=flow_run_id,
        flow_run_name="train-demo",
        files=[WEIGHTS_FILE, CARD_FILE, PREDICTIONS_FILE, "plots/fit.png"],
    )
    (root / CARD_FILE).write_text(card.model_dump_json(indent=2))
    pd.DataFrame({"true": y_pred, "predicted": y_pred, "residual": 0.0, "split": "all"}).to_parquet(
        root / PREDICTIONS_FILE, index=False
    )
    (root / "plots").mkdir(exist_ok=True)
    (root / "plots" / "fit.png").write_bytes(PNG_BYTES)
    return root
