"""Every option of a training or scoring run, declared once: type, default, bounds, description.

The `train` and `score` flows take these models (the Prefect UI shows one form section per
group, with the descriptions), the CLI derives its options from them (`regflow.cli.params`),
and `deployments/prefect.yaml` is validated against them. A field's CLI option is its flat
name (`flat_name`) with dashes (`min_abs_r` -> `--min-abs-r`, `model.name` -> `--model`);
`cli` in its extra names the positional argument instead (`DATA`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from regflow.errors import UsageError
from regflow.schemas.categorical import DEFAULT_MAX_LEVELS

# Seeds feed torch.manual_seed and numpy's generators, which take unsigned 64-bit integers.
MAX_SEED = 2**63 - 1
DEFAULT_OUT = "artifacts/runs"
DEFAULT_MIN_ABS_R = 0.5
DEFAULT_ALPHA = 0.05
# Model names become folder names and Prefect tags: portable, no separators, no leading dot.
# The one pattern: training validates --model with it and the registry (references.py) every
# reference. 128, the registry's old limit, not training's old 100: names registered with
# 101..128 characters must still resolve.
MAX_MODEL_NAME = 128
MODEL_NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_MODEL_NAME - 1}}}$"
MODEL_NAME_RULE = (
    f"letters, digits, '.', '_' or '-' (at most {MAX_MODEL_NAME}, starting with a letter or digit)"
)

Preset = Literal["default", "seed"]
OptimizerName = Literal["sgd", "adam", "lbfgs"]
DeviceName = Literal["auto", "cpu", "cuda", "mps"]
EngineName = Literal["auto", "local", "dask"]
PrecisionChoice = Literal["auto", "float32", "float64"]
OnInvalid = Literal["fail", "quarantine"]


class ParamsModel(BaseModel):
    # NaN and infinities are never a sensible setting; unknown keys are typos.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> Self:
        """From one flat mapping of option names (`target`, `min_abs_r`; `data` is the path)."""
        return cls.model_validate(nest(cls, flat))


class DataParams(ParamsModel):
    """What to read and which columns to model."""

    path: str | list[str] = Field(
        description="CSV or Parquet data: a file, a directory of files, a glob such as "
        "'data/part-*.parquet' (quoted: regflow expands it) or several files (a list from "
        "the Python API and deployments); local paths or URLs",
        json_schema_extra={"cli": "DATA"},
    )
    name: str | None = Field(
        None,
        min_length=1,
        description="what the card, lineage and messages call the data (default: its path); "
        "the Python API names in-memory data here, as its path is a temporary copy",
    )
    target: str = Field(description="the target column")
    features: list[str] | None = Field(
        None, description="feature columns (default: every numeric column but the target)"
    )
    categorical: list[str] | None = Field(
        None,
        description="text (or code) columns to use as features, one-hot encoded: one 0/1 "
        "column per level but the first (sorted), named column=level",
    )
    max_levels: int = Field(
        DEFAULT_MAX_LEVELS,
        ge=2,
        le=10_000,
        description="largest number of levels a --categorical column may have",
    )
    on_invalid: OnInvalid = Field(
        "fail",
        description="rows failing a value check: fail the run, or quarantine them "
        "(written to quarantine.csv) and train on the rest",
    )
    max_invalid_fraction: float = Field(
        0.0, ge=0, le=1, description="quarantine: largest share of rows that may be set aside"
    )

    def validation(self) -> dict[str, Any]:
        """The validate step's options."""
        return self.model_dump(
            include={
                "target",
                "features",
                "on_invalid",
                "max_invalid_fraction",
                "categorical",
                "max_levels",
            }
        )


class ModelParams(ParamsModel):
    """The model's name and form."""

    name: str | None = Field(
        None,
        pattern=MODEL_NAME_PATTERN,
        description="model name: letters, digits, '.', '_' or '-' (default: the data file's name)",
    )
    preset: Preset = Field(
        "default", description="default: fast to the optimum; seed: the tutorial's SGD"
    )
    no_intercept: bool = Field(False, description="fit through the origin")


class TrainingParams(ParamsModel):
    """How to train: optimizer, device, precision, seed and holdout."""

    optimizer: OptimizerName | None = Field(None, description="override the preset's optimizer")
    lr: float | None = Field(None, gt=0, allow_inf_nan=False, description="learning rate (> 0)")
    epochs: int | None = Field(None, ge=1, le=10_000_000, description="maximum epochs")
    device: DeviceName = Field("auto", description="auto picks cuda, then mps, then cpu")
    engine: EngineName = Field(
        "auto",
        description="where the data is processed: local (in this process), dask (partition by "
        "partition on a Dask cluster), auto (dask for a directory, glob or several files, or "
        "data larger than a quarter of memory)",
    )
    dask_address: str | None = Field(
        None,
        description="the Dask scheduler to use (tcp://host:8786); default: a LocalCluster "
        "started for the run, one worker process per core",
    )
    dtype: PrecisionChoice = Field(
        "auto", description="training precision (auto: float32 unless it cannot reach the optimum)"
    )
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="seed for initialisation and the holdout split"
    )
    holdout: float = Field(
        0.2, ge=0, lt=1, description="holdout fraction in [0, 1) (used from 30 rows)"
    )
    max_optimality_gap: float = Field(
        1e-3,
        gt=0,
        description="relative optimality gap above which the run fails (TrainingDidNotConverge)",
    )


class GateParams(ParamsModel):
    """The correlation gate: when the relationship is too weak to model."""

    min_abs_r: float = Field(
        DEFAULT_MIN_ABS_R, ge=0, le=1, description="smallest |r| (or R) to train"
    )
    alpha: float = Field(DEFAULT_ALPHA, gt=0, le=1, description="largest p-value to train")


class RegistryParams(ParamsModel):
    """Where outputs go and when a new version becomes the champion."""

    out: str = Field(DEFAULT_OUT, description="folder for run folders")
    registry: str | None = Field(
        None, description="registry folder or database URL (default $REGFLOW_REGISTRY)"
    )
    registry_store: str | None = Field(
        None,
        description="where version files go: a folder or an fsspec URL such as "
        "s3://bucket/prefix (default $REGFLOW_REGISTRY_STORE for a database index, else "
        "store/ beside the index)",
    )
    min_r2: float = Field(0.0, description="promotion: R² floor when there is no champion")
    min_improvement: float = Field(
        0.0, ge=0, lt=1, description="promotion: relative MSE improvement needed, in [0, 1)"
    )
    force: bool = Field(
        False,
        description="train and register even when an existing version has the same data, "
        "settings and regflow version (otherwise such a run registers nothing: unchanged)",
    )


class TrainParams(ParamsModel):
    """Every option of a training run, in the sections the Prefect UI shows."""

    data: DataParams
    model: ModelParams = ModelParams()
    training: TrainingParams = TrainingParams()
    gate: GateParams = GateParams()
    registry: RegistryParams = RegistryParams()

    @classmethod
    def from_flow_arguments(
        cls, sections: Mapping[str, Any], flat: Mapping[str, Any]
    ) -> tuple[TrainParams, list[str]]:
        """The flow's arguments as one model, and a note per flat (pre-0.2) parameter used.

        Deployments made before the parameters were grouped pass `data` as the path,
        `model` as the name and every other option flat (`target=...`); they keep working.
        """
        grouped: dict[str, dict[str, Any]] = {}
        legacy = dict(flat)
        for section, value in sections.items():
            if isinstance(value, BaseModel):
                grouped[section] = value.model_dump()
            elif isinstance(value, Mapping):
                grouped[section] = dict(value)
            elif value is not None:  # data="x.csv", model="seed", registry="/srv/registry"
                legacy[section] = value
        for section, values in nest(cls, legacy).items():
            grouped.setdefault(section, {}).update(values)
        index = flat_index(cls)
        notes = [
            f"flat parameter '{key}' is now '{'.'.join(index[key])}'" for key in sorted(legacy)
        ]
        return cls.model_validate(grouped), notes

    def gate_options(self) -> dict[str, Any]:
        """The correlation gate's options."""
        return {**self.gate.model_dump(), "fit_intercept": not self.model.no_intercept}

    def training_options(self, dtype: str) -> dict[str, Any]:
        """The trainer's options on top of the preset, at the chosen precision."""
        t = self.training
        return {
            "optimizer": t.optimizer,
            "lr": t.lr,
            "epochs": t.epochs,
            "fit_intercept": not self.model.no_intercept,
            "seed": t.seed,
            "dtype": dtype,
        }

    @property
    def model_name(self) -> str:
        """The model's name: as given, else the data file's name without its extension."""
        return self.model.name or default_model_name(self.data.path)

    def model_settings(self, features: list[str]) -> dict[str, Any]:
        """The settings that shape the trained model, by flat name, with the features as
        resolved from the data: where the data, outputs and promotion rules are kept out."""
        kept = {k: v for k, v in self.flat().items() if k not in _NOT_MODEL_SETTINGS}
        return {**kept, "features": list(features)}

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name (`data` is the path, `model` the model name)."""
        return {flat_name(section, name): value for section, name, value in self._settings()}

    def _settings(self) -> Iterator[tuple[str, str, Any]]:
        for section in type(self).model_fields:
            group = getattr(self, section)
            for name in type(group).model_fields:
                yield section, name, getattr(group, name)


class ScoreParams(ParamsModel):
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
    registry_store: str | None = Field(
        None,
        description="where version files go: a folder or an fsspec URL such as "
        "s3://bucket/prefix (default $REGFLOW_REGISTRY_STORE for a database index, else "
        "store/ beside the index)",
    )
    max_mse_ratio: float = Field(
        1.5,
        gt=0,
        allow_inf_nan=False,
        description="monitoring (data with the target): degraded when live MSE exceeds the "
        "version's holdout MSE by more than this factor",
    )
    max_psi: float = Field(
        0.25,
        ge=0,
        allow_inf_nan=False,
        description="monitoring: degraded when any feature's PSI against training exceeds this",
    )
    data_name: str | None = Field(
        None,
        min_length=1,
        description="what the scores, monitoring and messages call the data (default: its "
        "path); the Python API names in-memory data here",
    )


def default_model_name(data: str | list[str]) -> str:
    """The data file's name without its extension (URLs too), made a valid model name; for
    a glob or a list of files, their folder's name."""
    if not isinstance(data, str):
        data = str(PurePosixPath(data[0]).parent) if len(data) > 1 else (data or ["model"])[0]
    parts = PurePosixPath(data.split("?", 1)[0].rstrip("/")).parts
    while parts and any(c in parts[-1] for c in "*?["):
        parts = parts[:-1]  # a glob is named by the folder it searches
    stem = (PurePosixPath(*parts).stem if parts else "") or "model"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:MAX_MODEL_NAME] or "model"
    return name if re.match(MODEL_NAME_PATTERN, name) else "model"


# Settings that do not change the trained model: where the data and outputs are and what the
# data is called (the data's own SHA-256 stands for it), the model's name, and the promotion
# rules.
_NOT_MODEL_SETTINGS = frozenset(
    {
        "data",
        "data_name",
        "model",
        "out",
        "registry",
        "registry_store",
        "min_r2",
        "min_improvement",
        "force",
        "engine",
        "dask_address",
    }
)

# The flat names that differ from the field's own name: the CLI's and the old flow's.
_FLAT_NAMES = {("data", "path"): "data", ("data", "name"): "data_name", ("model", "name"): "model"}


def flat_name(section: str, name: str) -> str:
    return _FLAT_NAMES.get((section, name), name)


def sections(params: type[ParamsModel]) -> dict[str, type[ParamsModel]]:
    """Each section's name and model, in form order; a model without sections is one, ''."""
    out: dict[str, type[ParamsModel]] = {}
    for section, info in params.model_fields.items():
        annotation = info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, ParamsModel)):
            return {"": params}
        out[section] = annotation
    return out


def flat_index(params: type[ParamsModel] = TrainParams) -> dict[str, tuple[str, str]]:
    """Flat name -> (section, field) for every field."""
    return {
        flat_name(section, name): (section, name)
        for section, model in sections(params).items()
        for name in model.model_fields
    }


def nest(params: type[ParamsModel], flat: Mapping[str, Any]) -> dict[str, Any]:
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
    return nested.get("", nested)  # a model without sections takes the settings as they are


def parameter_error(err: ValidationError, label: Callable[[tuple[Any, ...]], str]) -> UsageError:
    """One usage error (exit 2) naming every bad setting by `label(loc)`: a flag or a field."""
    lines = []
    check = "usage"
    for detail in err.errors():
        loc = tuple(detail["loc"])
        if detail["type"] == "string_pattern_mismatch" and loc[-1:] == ("name",):
            check = "model_name"
            message = f"must be {MODEL_NAME_RULE}"
        elif detail["type"] == "extra_forbidden":
            message = "unknown setting"
        else:
            message = str(detail["msg"])[:1].lower() + str(detail["msg"])[1:]
        got = "" if detail["type"] == "missing" else f" (got {_short(detail.get('input'))})"
        lines.append(f"{label(loc)}: {message}{got}")
    return UsageError("invalid settings: " + "; ".join(lines), check=check)


def field_label(loc: tuple[Any, ...]) -> str:
    """`training.lr` for a nested field."""
    return ".".join(str(part) for part in loc)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
