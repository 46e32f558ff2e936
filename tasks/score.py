"""Score: load a verified registry model, predict a table, write the scores atomically."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from regflow.errors import InvalidInputError
from regflow.io.safe_csv import neutralise_formulas
from regflow.registry import Predictor, Registry, parse_ref
from regflow.schemas.columns import (
    PREDICTION_COLUMN,
    REF_COLUMN,
    RESERVED_COLUMNS,
    VERSION_COLUMN,
    reserved_problems,
)
from regflow.schemas.params import default_model_name
from regflow.tasks.outcomes import pipeline_task

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_OUTPUT_DIR = Path("artifacts") / "scores"
ARTIFACT_ROWS = 100


def default_model_ref(data: str) -> str:
    """`<default model name>@champion`: the name `regflow train` gives without --model."""
    return f"{default_model_name(data)}@champion"


def load_model(ref: str, registry: str | None = None, store: str | None = None) -> Predictor:
    """Open the registry and load `ref`; every file is verified before use."""
    with Registry.open(registry, store=store, create=False) as reg:
        return reg.load(ref)


def output_format(out: str | Path) -> Literal["csv", "parquet"]:
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise InvalidInputError.single(
            str(out),
            "output_format",
            f"unsupported extension {suffix or '(none)'!r}: use .csv or .parquet",
        )
    return OUTPUT_FORMATS[suffix]  # type: ignore[return-value]


def default_output(data: str, predictor: Predictor) -> Path:
    stem = Path(data.split("?", 1)[0].rstrip("/")).stem or "data"
    return DEFAULT_OUTPUT_DIR / f"{stem}-{predictor.name}-v{predictor.version}.csv"


def score_frame(predictor: Predictor, frame: pd.DataFrame, source: str | None) -> pd.DataFrame:
    """The input's columns plus the prediction and the model version that made it (pure)."""
    clashes = reserved_problems(
        [c for c in RESERVED_COLUMNS if c in frame.columns],
        source,
        "scoring adds this column; rename or drop it in the input",
    )
    if clashes:
        raise InvalidInputError(source, clashes)
    if len(frame) == 0:
        # A header and no rows: pandas reads the empty columns as text. Nothing to score is
        # not a wrong type; the result is an empty table with the output columns.
        frame = frame.astype(
            {
                c: np.float64
                for c in predictor.signature.numeric_names
                if c in frame.columns and not pd.api.types.is_numeric_dtype(frame[c])
            }
        )
    predictions = predictor.predict(frame, source=source)
    scored = frame.copy()
    scored[PREDICTION_COLUMN] = predictions
    scored[VERSION_COLUMN] = np.int64(predictor.version)
    scored[REF_COLUMN] = predictor.ref
    return scored


def write_scores(scored: pd.DataFrame, out: str | Path) -> Path:
    """Write CSV or Parquet (by extension) to a temp file, then rename it into place."""
    out = Path(out)
    fmt = output_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            # Passed-through text must not run as a formula in a spreadsheet.
            neutralise_formulas(scored).to_csv(tmp, index=False)
        else:
            scored.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def artifact_key(model_name: str, kind: str = "scores") -> str:
    """`<model>-<kind>` with only lowercase letters, digits and dashes (Prefect's rule)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") or "model"
    return f"{slug}-{kind}"


def scores_table(scored: pd.DataFrame, limit: int = ARTIFACT_ROWS) -> list[dict[str, Any]]:
    """The first rows as a list of row dicts (JSON-safe), for a Prefect table artifact."""
    head = scored.head(limit)
    rows = []
    for record in head.to_dict(orient="records"):
        rows.append({str(k): _json_safe(v) for k, v in record.items()})
    return rows


def _json_safe(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


load_model_task = pipeline_task(load_model, name="load-model", retries=2)

score_task = pipeline_task(score_frame, name="score")

write_scores_task = pipeline_task(write_scores, name="write-scores", retries=2)


def resolve_request(data: str, model: str | None) -> str:
    """The reference to load: the one given (validated) or `<data name>@champion`."""
    return str(parse_ref(model if model is not None else default_model_ref(data)))
