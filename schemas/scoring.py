"""What a scoring run returns (the CLI prints it with --json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from regflow.stats.monitoring import MonitoringReport


class ScoredModel(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    version: int
    ref: str = Field(description="the exact version, name:version")
    requested: str = Field(description="the reference as given, e.g. name@champion")


class ScoreResult(BaseModel):
    """What one scoring run did."""

    model_config = ConfigDict(frozen=True)
    model: ScoredModel
    data: str
    data_sha256: str
    rows: int
    out: str
    format: Literal["csv", "parquet"]
    artifact_key: str
    ignored_columns: list[str]
    prediction_mean: float | None
    prediction_min: float | None
    prediction_max: float | None
    status: Literal["ok", "degraded"] = Field(
        "ok", description="degraded: the data held the target and a monitoring check failed"
    )
    monitoring: MonitoringReport | None = Field(
        None, description="the verdict on the version (None: the data had no target column)"
    )
    monitoring_recorded: bool = Field(
        False, description="whether the verdict was written to the registry"
    )
