"""Monitoring a version on labelled live data: live metrics against its holdout, and drift.

Pure numpy: the scoring flow calls `monitor` when the data it scores holds the model's target
column, then publishes, records and (when a check fails) raises the alarm.

- MSE check: live MSE / the version's own holdout MSE (the fit split's when it had no
  holdout) must not exceed `max_mse_ratio`. The reference is floored at a tiny share of the
  training target's variance, so a model that fitted exactly (MSE 0) is judged against
  float rounding, not divided by zero.
- Drift checks: PSI of each feature against the summary of its training rows stored in the
  card (`regflow.stats.drift`) must not exceed `max_psi`. KS distances are reported beside
  them, not checked: PSI is the threshold the issue and common practice use (0.25: major
  shift).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from regflow.schemas.model_card import ModelCard
from regflow.stats.drift import FeatureDrift, feature_drift
from regflow.stats.metrics import split_metrics

DEFAULT_MAX_MSE_RATIO = 1.5
DEFAULT_MAX_PSI = 0.25
MSE_FLOOR_OF_VARIANCE = 1e-9  # of the training target's variance
MSE_CHECK = "mse_ratio"


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="mse_ratio, or psi:<feature>")
    value: float | None = Field(description="None: not finite (counts as failed)")
    threshold: float
    failed: bool


class LiveMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    n: int
    mse: float | None
    rmse: float | None
    mae: float | None
    r2: float | None


class MonitoringReport(BaseModel):
    """One scoring run's verdict on a version."""

    model_config = ConfigDict(frozen=True)

    model_ref: str
    status: Literal["ok", "degraded"]
    rows_scored: int
    rows_labelled: int = Field(description="rows whose target is a finite number")
    live: LiveMetrics | None = Field(description="None: no labelled rows")
    reference_split: str = Field(description="the card's split the live MSE is compared with")
    reference_mse: float
    mse_floor: float
    checks: list[Check]
    drift: list[FeatureDrift]
    notes: list[str] = Field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.failed]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def labelled_target(frame: pd.DataFrame, target: str) -> np.ndarray:
    """The target column as float64; text, blanks and infinities become NaN (unlabelled)."""
    values = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


def _reference(card: ModelCard) -> tuple[str, float, float]:
    """(split, its MSE, the floor) the live MSE is compared with."""
    split = "holdout" if "holdout" in card.metrics else next(iter(card.metrics))
    summary = (card.feature_summary or {}).get(card.signature.target.name)
    variance = summary.std**2 if summary is not None else 0.0
    return split, card.metrics[split].mse, MSE_FLOOR_OF_VARIANCE * variance


def monitor(
    card: ModelCard,
    features: pd.DataFrame,
    y: np.ndarray,
    predicted: np.ndarray,
    *,
    model_ref: str,
    max_mse_ratio: float = DEFAULT_MAX_MSE_RATIO,
    max_psi: float = DEFAULT_MAX_PSI,
) -> MonitoringReport:
    """Judge `card`'s version on live rows: `features` (validated, float64, the signature's
    encoded columns), the true `y`
    (NaN where unlabelled) and the version's `predicted` values, one per row."""
    notes: list[str] = []
    checks: list[Check] = []
    split, reference_mse, floor = _reference(card)
    labelled = np.flatnonzero(np.isfinite(y))
    live = None
    if labelled.size:
        m = split_metrics("all", y, predicted, labelled)
        live = LiveMetrics(
            n=m.n,
            mse=_finite_or_none(m.mse),
            rmse=_finite_or_none(m.rmse),
            mae=_finite_or_none(m.mae),
            r2=_finite_or_none(m.r2),
        )
        denominator = max(reference_mse, floor, np.finfo(np.float64).tiny)
        ratio = _finite_or_none(m.mse / denominator)
        failed = ratio is None or ratio > max_mse_ratio
        checks.append(Check(name=MSE_CHECK, value=ratio, threshold=max_mse_ratio, failed=failed))
    else:
        notes.append("no row has a numeric target value: live metrics not computed")
    if labelled.size < len(y):
        notes.append(f"{len(y) - labelled.size} rows without a numeric target left out of MSE")

    drift: list[FeatureDrift] = []
    if card.feature_summary is None:
        notes.append("the card has no training summary (trained before monitoring existed)")
    elif len(features):
        for name in card.signature.encoded_names:
            summary = card.feature_summary.get(name)
            if summary is None:
                notes.append(f"no training summary for feature {name!r}: drift not measured")
                continue
            one = feature_drift(name, summary, features[name].to_numpy(dtype=np.float64))
            drift.append(one)
            checks.append(
                Check(
                    name=f"psi:{name}", value=one.psi, threshold=max_psi, failed=one.psi > max_psi
                )
            )
    degraded = any(c.failed for c in checks)
    return MonitoringReport(
        model_ref=model_ref,
        status="degraded" if degraded else "ok",
        rows_scored=len(y),
        rows_labelled=int(labelled.size),
        live=live,
        reference_split=split,
        reference_mse=reference_mse,
        mse_floor=floor,
        checks=checks,
        drift=drift,
        notes=notes,
    )
