"""The model card (`model.json`) written beside every trained model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from regflow.schemas.files import CARD_FILE as CARD_FILE
from regflow.schemas.files import PREDICTIONS_FILE as PREDICTIONS_FILE
from regflow.schemas.files import WEIGHTS_FILE as WEIGHTS_FILE
from regflow.schemas.results import Evaluation, GateReport, SplitMetrics, Standardization
from regflow.stats.drift import ColumnSummary


class ColumnSpec(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    dtype: str = "float64"


class Signature(BaseModel):
    """What a model takes and gives: scoring validates input against it."""

    model_config = ConfigDict(frozen=True)
    features: list[ColumnSpec]
    target: ColumnSpec

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]


class DataInfo(BaseModel):
    source: str
    format: str
    sha256: str = Field(description="SHA-256 of the dataset's bytes as read")
    rows: int
    columns: list[str]
    rows_quarantined: int = Field(default=0, description="rows set aside as invalid")


class Coefficients(BaseModel):
    weights: dict[str, float] = Field(description="per feature, in original units")
    intercept: float


class ModelCard(BaseModel):
    """Everything needed to trust, reproduce and use one trained model."""

    name: str
    created_at: str
    signature: Signature
    fit_intercept: bool
    standardization: Standardization
    coefficients: Coefficients
    metrics: dict[str, SplitMetrics]
    evaluation: Evaluation
    gate: GateReport
    data: DataInfo
    training: dict[str, Any] = Field(
        description="device and device_name, optimizer, epochs, stop reason"
    )
    parameters: dict[str, Any] = Field(description="the flow's parameters")
    library_versions: dict[str, str]
    flow_run_id: str | None = None
    flow_run_name: str | None = None
    files: list[str] = Field(default_factory=list)
    fingerprint: str | None = Field(
        default=None,
        description="SHA-256 of the data's SHA-256, the settings that shape the model and the "
        "regflow version: a run with the same fingerprint registers nothing new",
    )
    feature_summary: dict[str, ColumnSummary] | None = Field(
        default=None,
        description="each feature's (and the target's) distribution on the training rows, "
        "for drift monitoring when the model scores",
    )
