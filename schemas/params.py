"""Every option of a training or scoring run, declared once: type, default, bounds, description.

The `train` and `score` flows take these models (the Prefect UI shows one form section per
group, with the descriptions), the CLI derives its options from them (`regflow.cli.params`),
and `deployments/prefect.yaml` is validated against them. A field's CLI name is its own name
with dashes (`min_abs_r` -> `--min-abs-r`) unless `cli` in its extra says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Seeds feed torch.manual_seed and numpy's generators, which take unsigned 64-bit integers.
MAX_SEED = 2**63 - 1
DEFAULT_OUT = "artifacts/runs"

Preset = Literal["default", "seed"]
OptimizerName = Literal["sgd", "adam", "lbfgs"]
DeviceName = Literal["auto", "cpu", "cuda", "mps"]
PrecisionChoice = Literal["auto", "float32", "float64"]
OnInvalid = Literal["fail", "quarantine"]


class _Params(BaseModel):
    # NaN and infinities are never a sensible setting; unknown keys are typos.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataParams(_Params):
    """What to read and which columns to model."""

    path: str = Field(
        description="CSV or Parquet file: a local path or a URL",
        json_schema_extra={"cli": "DATA"},
    )
    target: str = Field(description="the target column")
    features: list[str] | None = Field(
        None, description="feature columns (default: every numeric column but the target)"
    )
    on_invalid: OnInvalid = Field(
        "fail",
        description="rows failing a value check: fail the run, or quarantine them "
        "(written to quarantine.csv) and train on the rest",
    )
    max_invalid_fraction: float = Field(
        0.0, ge=0, le=1, description="quarantine: largest share of rows that may be set aside"
    )


class ModelParams(_Params):
    """The model's name and form."""

    name: str | None = Field(
        None,
        description="model name (default: the data file's name)",
        json_schema_extra={"cli": "--model"},
    )
    preset: Preset = Field(
        "default", description="default: fast to the optimum; seed: the tutorial's SGD"
    )
    no_intercept: bool = Field(False, description="fit through the origin")


class TrainingParams(_Params):
    """How to train: optimizer, device, precision, seed and holdout."""

    optimizer: OptimizerName | None = Field(None, description="override the preset's optimizer")
    lr: float | None = Field(None, gt=0, description="learning rate (> 0)")
    epochs: int | None = Field(None, ge=1, le=10_000_000, description="maximum epochs")
    device: DeviceName = Field("auto", description="auto picks cuda, then mps, then cpu")
    dtype: PrecisionChoice = Field(
        "auto", description="training precision (auto: float32 unless it cannot reach the optimum)"
    )
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="seed for initialisation and the holdout split"
    )
    holdout: float = Field(
        0.2, ge=0, lt=1, description="holdout fraction in [0, 1) (used from 30 rows)"
    )


class GateParams(_Params):
    """The correlation gate: when the relationship is too weak to model."""

    min_abs_r: float = Field(0.5, ge=0, le=1, description="smallest |r| (or R) to train")
    alpha: float = Field(0.05, gt=0, le=1, description="largest p-value to train")


class RegistryParams(_Params):
    """Where outputs go and when a new version becomes the champion."""

    out: str = Field(DEFAULT_OUT, description="folder for run folders")
    registry: str | None = Field(
        None, description="registry folder or database URL (default $REGFLOW_REGISTRY)"
    )
    min_r2: float = Field(0.0, description="promotion: R² floor when there is no champion")
    min_improvement: float = Field(
        0.0, ge=0, lt=1, description="promotion: relative MSE improvement needed, in [0, 1)"
    )


class TrainParams(_Params):
    """Every option of a training run, in the sections the Prefect UI shows."""

    data: DataParams
    model: ModelParams = ModelParams()
    training: TrainingParams = TrainingParams()
    gate: GateParams = GateParams()
    registry: RegistryParams = RegistryParams()

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> TrainParams:
        """From one flat mapping of field names (`target`, `min_abs_r`; `data` is the path)."""
        return cls.model_validate(nest(cls, flat))

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name (`data` is the path, `model` the model name)."""
        return {flat_name(section, name): value for section, name, value in self._settings()}

    def _settings(self) -> Iterator[tuple[str, str, Any]]:
        for section in type(self).model_fields:
            group = getattr(self, section)
            for name in type(group).model_fields:
                yield section, name, getattr(group, name)


class ScoreParams(_Params):
    """Every option of a scoring run."""

    data: str = Field(
        description="CSV or Parquet file to score: a local path or a URL",
        json_schema_extra={"cli": "DATA"},
    )
    model: str | None = Field(
        None, description="name@alias, name:version or name (default: <data name>@champion)"
    )
    out: str | None = Field(
        None, description="output file, .csv or .parquet (default under artifacts/scores/)"
    )
    registry: str | None = Field(
        None, description="registry folder or database URL (default $REGFLOW_REGISTRY)"
    )


# The flat names that differ from the field's own name: the CLI's and the old flow's.
_FLAT_NAMES = {("data", "path"): "data", ("model", "name"): "model"}


def flat_name(section: str, name: str) -> str:
    return _FLAT_NAMES.get((section, name), name)


def sections(params: type[TrainParams]) -> dict[str, type[_Params]]:
    """Each section's name and model, in form order."""
    out: dict[str, type[_Params]] = {}
    for section, info in params.model_fields.items():
        annotation = info.annotation
        assert isinstance(annotation, type) and issubclass(annotation, _Params)
        out[section] = annotation
    return out


def flat_index(params: type[TrainParams] = TrainParams) -> dict[str, tuple[str, str]]:
    """Flat name -> (section, field) for every field."""
    return {
        flat_name(section, name): (section, name)
        for section, model in sections(params).items()
        for name in model.model_fields
    }


def nest(params: type[TrainParams], flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Flat settings grouped into sections; an unknown name is a pydantic validation error."""
    index = flat_index(params)
    nested: dict[str, dict[str, Any]] = {}
    unknown = []
    for key, value in flat.items():
        if key not in index:
            unknown.append(key)
            continue
        section, name = index[key]
        nested.setdefault(section, {})[name] = value
    if unknown:
        raise ValidationError.from_exception_data(
            params.__name__,
            [
                {"type": "extra_forbidden", "loc": (key,), "input": flat[key]}
                for key in sorted(unknown)
            ],
        )
    return nested
