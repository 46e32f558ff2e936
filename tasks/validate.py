"""Validate: choose the feature and target columns, then check them with the pandera schema."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from regflow.errors import InvalidInputError
from regflow.io.text import name_list
from regflow.schemas.categorical import (
    DEFAULT_MAX_LEVELS,
    as_source_columns,
    fit_levels,
    rejected_by_source_column,
    with_indicators,
)
from regflow.schemas.columns import (
    dtype_problems,
    is_boolean,
    is_numeric_feature,
    numbers_as_text,
    reserved_problems,
)
from regflow.schemas.dataset import screen_frame, validate_frame
from regflow.schemas.frames import DatasetFile, LoadedData, ValidatedData
from regflow.schemas.header import RESERVED_MESSAGE, delimiter_hint, header_problems
from regflow.schemas.params import OnInvalid
from regflow.schemas.results import QuarantineSummary
from regflow.tasks.outcomes import pipeline_task


def _mostly_numeric(column: pd.Series) -> bool:
    if is_boolean(column):
        return False  # refused as a feature (schemas.columns): ignored, as text is
    if pd.api.types.is_numeric_dtype(column):
        return is_numeric_feature(column.dtype)
    return numbers_as_text(column)  # a few stray strings: validation names the rows


def resolve_columns(
    frame: pd.DataFrame,
    target: str,
    features: list[str] | None,
    source: str,
    categorical: list[str] | None = None,
) -> tuple[list[str], list[str]]:
    """The numeric feature list (default: every numeric column but the target and the
    categorical ones) and the ignored columns; categorical columns are in neither."""
    categorical = categorical or []
    columns = [str(c) for c in frame.columns]
    available = name_list(columns, limit=20)
    hint = delimiter_hint(columns)
    # The checks a file's header alone decides (the CLI runs them before Prefect starts).
    problems = header_problems(columns, target, features, source, categorical)
    coded = set(categorical)
    numeric = [f for f in features or [] if f not in coded]  # a coded column may be named
    problems += dtype_problems(frame, dict.fromkeys(numeric), source)
    if problems:
        raise InvalidInputError(source, problems)
    if features is not None:
        given = set(features) | coded
        return numeric, [c for c in columns if c not in given and c != target]
    if len(frame) == 0:
        # A header and no rows: no column can show it is numeric; the row count check
        # then names the real problem instead of "no numeric feature".
        chosen = [c for c in columns if c != target and c not in coded]
    else:
        chosen = [
            c for c in columns if c != target and c not in coded and _mostly_numeric(frame[c])
        ]
    taken = set(chosen) | coded
    ignored = [c for c in columns if c != target and c not in taken]
    if not chosen and not coded:
        raise InvalidInputError.single(
            source,
            "numeric_features",
            f"no numeric feature column besides the target; the file has {available}{hint}",
        )
    reserved = reserved_problems(chosen, source, RESERVED_MESSAGE)
    if reserved:
        raise InvalidInputError(source, reserved)
    return chosen, ignored


def _encoded(
    data: LoadedData, chosen: list[str], target: str, levels: dict[str, list[str]]
) -> tuple[pd.DataFrame, list[str]]:
    """The numeric features, the indicators and the target as one frame, and the features
    (schemas.categorical.with_indicators: the dask engine's workers build the same)."""
    if not levels:
        return data.frame, chosen
    return with_indicators(data.frame, chosen, target, levels)


def validate_dataset(
    data: LoadedData,
    target: str,
    features: list[str] | None,
    on_invalid: OnInvalid = "fail",
    max_invalid_fraction: float = 0.0,
    categorical: list[str] | None = None,
    max_levels: int = DEFAULT_MAX_LEVELS,
) -> ValidatedData:
    """Choose the columns and validate them; `quarantine` sets invalid rows aside instead.

    `categorical` columns are one-hot encoded first (schemas.categorical); from then on
    their indicators are ordinary float features.
    """
    chosen, ignored = resolve_columns(data.frame, target, features, data.source, categorical)
    levels = fit_levels(data.frame, categorical or [], max_levels, data.source)
    table, names = _encoded(data, chosen, target, levels)
    rejected = None
    try:
        if on_invalid == "quarantine":
            screened = screen_frame(
                table, names, target, data.source, max_invalid_fraction=max_invalid_fraction
            )
            frame, rejected = screened.frame, screened.rejected
        else:
            frame = validate_frame(table, names, target, data.source)
    except InvalidInputError as err:
        raise in_their_files(as_source_columns(err, levels), data.files) from None
    if rejected is not None:
        rejected = rejected_by_source_column(rejected, levels)
    return ValidatedData(
        frame=frame,
        features=names,
        levels=levels,
        text_columns=[c for c in ignored if len(data.frame) and not _mostly_numeric(data.frame[c])],
        target=target,
        source=data.source,
        sha256=data.sha256,
        format=data.format,
        ignored_columns=ignored,
        rows_read=len(data.frame),
        rejected=rejected,
        files=data.files,
    )


def in_their_files(err: InvalidInputError, files: Sequence[DatasetFile]) -> InvalidInputError:
    """A table read from several files: each problem's example rows named by their file and
    their row in it (as the dask engine names them), one problem per file."""
    if len(files) < 2:
        return err
    starts = list(itertools.accumulate(f.rows for f in files))  # rows before each next file
    problems = []
    for problem in err.problems:
        if not problem.rows or problem.file not in (None, err.source):
            problems.append(problem)
            continue
        values = problem.values or [""] * len(problem.rows)
        groups: dict[int, list[tuple[int, str]]] = {}
        for row, value in zip(problem.rows, values, strict=True):
            index = bisect.bisect_left(starts, row)  # 1-based row: in file index
            first = starts[index - 1] if index else 0
            groups.setdefault(index, []).append((row - first, value))
        shown_all = problem.count is None or problem.count == len(problem.rows)
        message = problem.message
        if not shown_all:
            message += f" ({problem.count} rows in all, across the files)"
        for index, rows in groups.items():
            problems.append(
                replace(
                    problem, file=files[index].path, message=message, count=None,
                    rows=[row for row, _ in rows],
                    values=[value for _, value in rows] if problem.values else [],
                )
            )  # fmt: skip
    return InvalidInputError(err.source, problems)


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
