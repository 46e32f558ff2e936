"""Validate: choose the feature and target columns, then check them with the pandera schema."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from regflow.errors import InvalidInputError, Problem
from regflow.io.text import name_list
from regflow.schemas.columns import (
    dtype_problems,
    is_boolean,
    is_numeric_feature,
    reserved_problems,
)
from regflow.schemas.dataset import screen_frame, validate_frame
from regflow.schemas.frames import LoadedData, ValidatedData
from regflow.schemas.params import OnInvalid
from regflow.schemas.results import QuarantineSummary
from regflow.tasks.outcomes import pipeline_task

DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_ROWS = 1000
RESERVED_MESSAGE = (
    "scoring writes a column by this name, so a model using it could never score: rename it"
)


def _mostly_numeric(column: pd.Series) -> bool:
    if is_boolean(column):
        return False  # refused as a feature (schemas.columns): ignored, as text is
    if pd.api.types.is_numeric_dtype(column):
        return is_numeric_feature(column.dtype)
    # A numeric column with a few stray strings is still a feature: validation names the rows.
    sample = column.dropna().head(SNIFF_ROWS)
    return len(sample) > 0 and pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.5


def _delimiter_hint(columns: list[str]) -> str:
    if len(columns) == 1:
        for char, name in DELIMITERS.items():
            if char in columns[0]:
                return (
                    f"; the header is one column containing '{char}': is the file"
                    f" {name}-separated? regflow reads comma-separated CSV"
                )
    return ""


def resolve_columns(
    frame: pd.DataFrame, target: str, features: list[str] | None, source: str
) -> tuple[list[str], list[str]]:
    """The feature list (default: every numeric column but the target) and ignored columns."""
    columns = [str(c) for c in frame.columns]
    available = name_list(columns, limit=20)
    hint = _delimiter_hint(columns)
    problems: list[Problem] = [
        Problem(
            check="unique_column_names",
            message="the data has more than one column with this name",
            file=source,
            column=name,
        )
        # Counter, not list.count per column: that is O(d^2), seconds at 10,000 columns.
        for name, seen in sorted(Counter(columns).items())
        if seen > 1
    ]
    wanted = [target, *(features or [])]
    for name in dict.fromkeys(wanted):
        if name not in columns:
            problems.append(
                Problem(
                    check="column_present",
                    message=f"column not found; the file has {available}{hint}",
                    file=source,
                    column=name,
                )
            )
    if features is not None:
        if target in features:
            problems.append(
                Problem(
                    check="target_not_feature",
                    message="the target is also named as a feature",
                    file=source,
                    column=target,
                )
            )
        for name in sorted({f for f in features if features.count(f) > 1}):
            problems.append(
                Problem(
                    check="unique_features",
                    message="named more than once in --features",
                    file=source,
                    column=name,
                )
            )
        if not features:
            problems.append(
                Problem(check="features_given", message="--features is empty", file=source)
            )
    # Scoring's own rules (schemas.columns): a model that trains must also be able to score.
    problems += reserved_problems(wanted, source, RESERVED_MESSAGE)
    problems += dtype_problems(frame, dict.fromkeys(features or []), source)
    if problems:
        raise InvalidInputError(source, problems)
    if features is not None:
        given = set(features)
        return list(features), [c for c in columns if c not in given and c != target]
    if len(frame) == 0:
        # A header and no rows: no column can show it is numeric; the row count check
        # then names the real problem instead of "no numeric feature".
        chosen = [c for c in columns if c != target]
    else:
        chosen = [c for c in columns if c != target and _mostly_numeric(frame[c])]
    taken = set(chosen)
    ignored = [c for c in columns if c != target and c not in taken]
    if not chosen:
        raise InvalidInputError.single(
            source,
            "numeric_features",
            f"no numeric feature column besides the target; the file has {available}{hint}",
        )
    reserved = reserved_problems(chosen, source, RESERVED_MESSAGE)
    if reserved:
        raise InvalidInputError(source, reserved)
    return chosen, ignored


def validate_dataset(
    data: LoadedData,
    target: str,
    features: list[str] | None,
    on_invalid: OnInvalid = "fail",
    max_invalid_fraction: float = 0.0,
) -> ValidatedData:
    """Choose the columns and validate them; `quarantine` sets invalid rows aside instead."""
    chosen, ignored = resolve_columns(data.frame, target, features, data.source)
    rejected = None
    if on_invalid == "quarantine":
        screened = screen_frame(
            data.frame, chosen, target, data.source, max_invalid_fraction=max_invalid_fraction
        )
        frame, rejected = screened.frame, screened.rejected
    else:
        frame = validate_frame(data.frame, chosen, target, data.source)
    return ValidatedData(
        frame=frame,
        features=chosen,
        target=target,
        source=data.source,
        sha256=data.sha256,
        format=data.format,
        ignored_columns=ignored,
        rows_read=len(data.frame),
        rejected=rejected,
    )


def quarantine_summary(
    valid: ValidatedData, max_invalid_fraction: float
) -> QuarantineSummary | None:
    """Counts of the rows quarantine set aside; None when invalid rows fail the run."""
    if valid.rejected is None:
        return None
    # A row failing two checks counts under both (so by_check may sum past rows_rejected).
    per_check = valid.rejected.drop_duplicates(["row", "check"])
    return QuarantineSummary(
        rows_read=valid.rows_read,
        rows_rejected=valid.rows_rejected,
        rows_used=len(valid.frame),
        fraction=valid.rows_rejected / valid.rows_read if valid.rows_read else 0.0,
        max_invalid_fraction=max_invalid_fraction,
        by_check={str(k): int(v) for k, v in per_check["check"].value_counts().items()},
    )


validate_task = pipeline_task(validate_dataset, name="validate")
