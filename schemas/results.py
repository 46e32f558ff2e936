"""Typed results that tasks hand to each other (and that the CLI prints as JSON)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from regflow.schemas.files import CARD_FILE, PREDICTIONS_FILE, QUARANTINE_FILE, WEIGHTS_FILE

Split = Literal["train", "holdout", "all"]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureCorrelation(_Result):
    feature: str
    r: float = Field(description="Pearson correlation with the target")
    p_value: float = Field(description="two-sided p-value of r (t distribution, n-2 df)")
    spearman: float = Field(description="Spearman rank correlation with the target")


class GateWarning(_Result):
    kind: Literal["curvature", "influential_point", "rank_disagreement", "ill_conditioned"]
    message: str
    feature: str | None = None
    value: float | None = None


class GateReport(_Result):
    n_rows: int
    features: list[FeatureCorrelation]
    multiple_r: float = Field(description="multiple correlation R of the least-squares fit")
    multiple_r_p_value: float = Field(description="p-value of the overall F test")
    statistic: Literal["max_abs_r", "R"]
    value: float
    p_value: float
    min_abs_r: float
    alpha: float
    condition_number: float
    passed: bool
    reason: str
    warnings: list[GateWarning] = Field(default_factory=list)

    @property
    def decision(self) -> str:
        return "pass" if self.passed else "stop"


class Standardization(_Result):
    """Scaling applied before training; predictions are mapped back through it."""

    x_mean: list[float]
    x_scale: list[float]
    y_mean: float
    y_scale: float


class TrainResult(_Result):
    features: list[str]
    device: str
    device_name: str = Field(description="the GPU's model (e.g. from CUDA), or the processor's")
    optimizer: str
    dtype: str
    lr: float
    epochs_run: int
    max_epochs: int
    stop_reason: str
    losses: list[float] = Field(description="loss before each epoch's update (training units)")
    final_loss: float = Field(description="loss after the last update (training units)")
    fit_intercept: bool
    standardization: Standardization
    weight_trained: list[float] = Field(description="weights in the units training saw")
    bias_trained: float
    coefficients: dict[str, float] = Field(description="weights in original units")
    intercept: float
    seconds: float


class SplitMetrics(_Result):
    split: Split
    n: int
    mse: float
    rmse: float
    mae: float
    r2: float


class Evaluation(_Result):
    metrics: dict[str, SplitMetrics]
    fit_split: Split = Field(description="rows the model and the reference were fitted on")
    holdout_note: str
    ols_coefficients: dict[str, float]
    ols_intercept: float
    ols_mse: float = Field(description="MSE of the float64 least-squares fit on the fit split")
    model_mse: float = Field(description="MSE of the trained model on the fit split")
    optimality_gap: float | None = Field(
        description="(model_mse - ols_mse) / ols_mse; None where the optimum is ~0 (exact fit)"
    )
    optimality_gap_abs: float = Field(description="model_mse - ols_mse")
    reference_condition_number: float
    reference_trusted: bool


class PublishedRun(_Result):
    """Where one run's outputs went (paths as strings so they print as JSON)."""

    run_dir: str
    model: str
    card: str
    predictions: str
    plots: dict[str, str]
    quarantine: str | None = Field(default=None, description="quarantine.csv, when written")


class StagedRun(_Result):
    """A run folder written in full under a hidden staging name, not yet in place."""

    staging_dir: str
    final_dir: str
    plots: dict[str, str] = Field(description="plot name -> path relative to the run folder")
    quarantine: bool
    # The dask engine writes both as folders of Parquet parts.
    predictions_name: str = PREDICTIONS_FILE
    quarantine_name: str = QUARANTINE_FILE

    def published(self, run_dir: str | None = None) -> PublishedRun:
        """The run's paths under `run_dir` (default: the final folder)."""
        root = run_dir or self.final_dir
        return PublishedRun(
            run_dir=root,
            model=f"{root}/{WEIGHTS_FILE}",
            card=f"{root}/{CARD_FILE}",
            predictions=f"{root}/{self.predictions_name}",
            plots={name: f"{root}/{rel}" for name, rel in self.plots.items()},
            quarantine=f"{root}/{self.quarantine_name}" if self.quarantine else None,
        )


class QuarantineSummary(_Result):
    """What `on_invalid="quarantine"` set aside: nothing is dropped without being counted."""

    rows_read: int
    rows_rejected: int
    rows_used: int
    fraction: float = Field(description="rows_rejected / rows_read")
    max_invalid_fraction: float
    by_check: dict[str, int] = Field(description="rejected rows per failed check")


class TrainOutcome(_Result):
    """What a completed training run returns (the CLI prints it as JSON)."""

    status: Literal["completed"] = "completed"
    model: str
    flow_run_id: str | None
    flow_run_name: str | None
    data_sha256: str
    features: list[str]
    target: str
    ignored_columns: list[str]
    text_columns: list[str] = Field(
        default_factory=list, description="ignored columns that are not numeric"
    )
    categorical: dict[str, list[str]] = Field(
        default_factory=dict, description="--categorical columns and their sorted levels"
    )
    dtype_reason: str
    gate: GateReport
    training: TrainResult
    evaluation: Evaluation
    paths: PublishedRun
    predictions_preview: list[dict[str, Any]] = Field(
        default_factory=list, description="the first rows of predictions.parquet"
    )
    registry: str
    model_version: int
    model_ref: str
    promoted: bool
    champion_before: int | None
    champion_after: int | None
    promotion: dict[str, Any] = Field(description="the champion/challenger decision")
    quarantine: QuarantineSummary | None = Field(
        default=None, description='rows set aside (on_invalid="quarantine" only)'
    )


class UnchangedOutcome(_Result):
    """A training run that registered nothing: an existing version already has the same data,
    settings and regflow version (its fingerprint). Pass `force` to train anyway."""

    status: Literal["unchanged"] = "unchanged"
    model: str
    flow_run_id: str | None
    flow_run_name: str | None
    data_sha256: str
    fingerprint: str
    registry: str
    model_version: int
    model_ref: str
    aliases: list[str] = Field(description="the aliases that version holds now")
    reason: str
