"""The model card (`model.json`) written beside every trained model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from regflow.schemas.categorical import indicator_names
from regflow.schemas.files import CARD_FILE as CARD_FILE
from regflow.schemas.files import PREDICTIONS_FILE as PREDICTIONS_FILE
from regflow.schemas.files import WEIGHTS_FILE as WEIGHTS_FILE
from regflow.schemas.results import Evaluation, GateReport, SplitMetrics, Standardization
from regflow.stats.drift import ColumnSummary


class ColumnSpec(BaseModel):
    """One input column: numeric (float64), or categorical with its sorted levels (the first
    is the reference level, which has no indicator)."""

    model_config = ConfigDict(frozen=True)
    name: str
    dtype: str = "float64"
    kind: Literal["numeric", "categorical"] = "numeric"
    levels: list[str] | None = None

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A numeric column serialises as before categorical columns existed: the registry
        # hashes signatures, and older versions' records must keep matching.
        data: dict[str, Any] = handler(self)
        if self.kind == "numeric" and self.levels is None:
            data.pop("kind", None)
            data.pop("levels", None)
        return data

    @property
    def encoded_names(self) -> list[str]:
        """The model's columns for this input: itself, or one indicator per non-reference level."""
        if self.kind == "categorical":
            return indicator_names(self.name, self.levels or [])
        return [self.name]


class Signature(BaseModel):
    """What a model takes and gives: scoring validates input against it."""

    model_config = ConfigDict(frozen=True)
    features: list[ColumnSpec]
    target: ColumnSpec

    @property
    def feature_names(self) -> list[str]:
        """The input columns scoring needs (a categorical column by its own name)."""
        return [c.name for c in self.features]

    @property
    def encoded_names(self) -> list[str]:
        """The model's columns, one per coefficient: indicators stand for categorical inputs."""
        return [name for c in self.features for name in c.encoded_names]

    @property
    def categorical(self) -> dict[str, list[str]]:
        """Each categorical input column and its levels."""
        return {c.name: list(c.levels or []) for c in self.features if c.kind == "categorical"}

    @property
    def numeric_names(self) -> list[str]:
        return [c.name for c in self.features if c.kind == "numeric"]


class DataFile(BaseModel):
    """One file of a multi-file dataset, as it was read."""

    path: str
    size: int
    sha256: str
    rows: int


class DataInfo(BaseModel):
    source: str
    format: str
    sha256: str = Field(
        description="SHA-256 of the dataset's bytes as read; for several files, of their "
        "SHA-256 in path order (regflow.io.datasets.dataset_sha256)"
    )
    rows: int
    columns: list[str]
    rows_quarantined: int = Field(default=0, description="rows set aside as invalid")
    files: list[DataFile] | None = Field(
        default=None, description="a multi-file dataset's files, in path order"
    )

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # One file: the card reads as it did before datasets had several files.
        data: dict[str, Any] = handler(self)
        if self.files is None:
            data.pop("files", None)
        return data


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
