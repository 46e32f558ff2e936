"""One-hot encoding of categorical columns, shared by training and scoring.

Training learns each column's levels (sorted, so the encoding does not depend on row order)
and drops the first as the reference level: with an intercept, a full set of indicators would
be collinear with it. Each other level becomes a float 0/1 column named `column=level`.
Scoring expands a frame from the levels recorded in the signature, so both sides build the
same columns; a level training never saw has no coefficient and is refused (`known_levels`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from regflow.errors import InvalidInputError, Problem
from regflow.io.text import name_list

DEFAULT_MAX_LEVELS = 50
EXAMPLES = 5
MAX_LEVELS_CHECK = "max_levels"
LEVELS_CHECK = "at_least_2_levels"
INDICATOR_NAME_CHECK = "indicator_name"
KNOWN_LEVELS_CHECK = "known_levels"
NULL_CHECK = "not_nullable"


def indicator_name(column: str, level: str) -> str:
    return f"{column}={level}"


def indicator_names(column: str, levels: list[str]) -> list[str]:
    """The encoded columns of one categorical column: every level but the reference (first)."""
    return [indicator_name(column, level) for level in levels[1:]]


def level_text(column: pd.Series) -> pd.Series:
    """Each non-null value as its level (text), nulls kept as NA.

    Levels are text on both sides so that the card can record them; integer codes read from
    CSV (1, 2) and from Parquet alike become "1", "2".
    """
    present = column.notna()
    text = pd.Series(pd.NA, index=column.index, dtype=object)
    text[present] = column[present].map(str)
    return text


def column_levels(column: pd.Series) -> list[str]:
    """One column's levels: its distinct non-null values as text, sorted."""
    return sorted(set(level_text(column).dropna()))


def fit_levels(
    frame: pd.DataFrame,
    columns: Iterable[str],
    max_levels: int,
    source: str | None,
    *,
    taken: Iterable[str] = (),
) -> dict[str, list[str]]:
    """Each column's sorted levels; InvalidInputError for too many or too few levels, or an
    indicator name that another column (`taken`, or another indicator) already has."""
    found = {column: column_levels(frame[column]) for column in columns}
    names = [*(str(c) for c in frame.columns), *taken]
    return check_levels(found, max_levels, source, taken=names, has_rows=len(frame) > 0)


def check_levels(
    found: Mapping[str, list[str]],
    max_levels: int,
    source: str | None,
    *,
    taken: Iterable[str],
    has_rows: bool,
) -> dict[str, list[str]]:
    """fit_levels on levels already found (the dask engine merges every file's): the same
    checks, `taken` the data's column names."""
    levels: dict[str, list[str]] = {}
    problems: list[Problem] = []
    names = set(taken)
    seen: set[str] = set()
    for column, values in found.items():
        known = sorted(values)
        if len(known) > max_levels:
            problems.append(
                Problem(
                    check=MAX_LEVELS_CHECK,
                    message=f"{len(known)} levels, more than --max-levels {max_levels} allows "
                    f"(e.g. {name_list(known, EXAMPLES)}): one-hot encoding it would add "
                    f"{len(known) - 1} features; raise --max-levels deliberately, or do not "
                    "use it as --categorical",
                    file=source,
                    column=column,
                    count=len(known),
                )
            )
            continue
        if has_rows and len(known) < 2:
            problems.append(
                Problem(
                    check=LEVELS_CHECK,
                    message=f"a categorical column needs at least 2 levels, found "
                    f"{len(known)}: it carries no information",
                    file=source,
                    column=column,
                    values=known,
                )
            )
            continue
        for name in indicator_names(column, known):
            if name in names or name in seen:
                problems.append(
                    Problem(
                        check=INDICATOR_NAME_CHECK,
                        message=f"its indicator column '{name}' would have the name of "
                        "another column: rename that column or this one",
                        file=source,
                        column=column,
                        values=[name],
                    )
                )
            seen.add(name)
        levels[column] = known
    if problems:
        raise InvalidInputError(source, problems)
    return levels


def encode(frame: pd.DataFrame, levels: Mapping[str, list[str]]) -> pd.DataFrame:
    """The indicator columns (float64 0/1; NaN where the value is missing), in level order."""
    out: dict[str, np.ndarray] = {}
    for column, known in levels.items():
        text = level_text(frame[column])
        missing = text.isna().to_numpy()
        for level, name in zip(known[1:], indicator_names(column, known), strict=True):
            values = (text == level).to_numpy(dtype=np.float64, na_value=0.0)
            values[missing] = np.nan
            out[name] = values
    return pd.DataFrame(out, index=frame.index)


def with_indicators(
    frame: pd.DataFrame, chosen: list[str], target: str, levels: Mapping[str, list[str]]
) -> tuple[pd.DataFrame, list[str]]:
    """The numeric features, the indicators and the target as one frame, and the features.

    A missing categorical value is NaN in every indicator, so the numeric checks name its
    rows (`not_nullable`) and quarantine can set them aside like any other invalid row.
    """
    indicators = encode(frame, levels)
    table = pd.concat([frame.loc[:, chosen], indicators, frame.loc[:, [target]]], axis=1)
    return table, [*chosen, *indicators.columns]


def as_source_columns(err: InvalidInputError, levels: Mapping[str, list[str]]) -> InvalidInputError:
    """The same problems, an indicator's named by its categorical column, each once."""
    seen: set[tuple[str | None, str]] = set()
    problems = []
    for problem in err.problems:
        column = problem.column
        if column is not None:
            column = source_column(column, levels)
        if (column, problem.check) in seen:
            continue  # a missing level fails every indicator of its column alike
        seen.add((column, problem.check))
        problems.append(replace(problem, column=column))
    return InvalidInputError(err.source, problems)


def rejected_by_source_column(
    rejected: pd.DataFrame, levels: Mapping[str, list[str]]
) -> pd.DataFrame:
    """Quarantined rows (row, column, check, value) named by their categorical column."""
    if not levels:
        return rejected
    return rejected.assign(
        column=rejected["column"].map(lambda c: source_column(str(c), levels))
    ).drop_duplicates(["row", "column", "check"], ignore_index=True)


def source_column(name: str, levels: Mapping[str, list[str]]) -> str:
    """The categorical column an indicator comes from (`name` itself for any other column)."""
    for column, known in levels.items():
        if name in indicator_names(column, known):
            return column
    return name


def unknown_level_problems(
    frame: pd.DataFrame, levels: Mapping[str, list[str]], source: str | None
) -> list[Problem]:
    """A `known_levels` problem per column holding levels training never saw."""
    problems = []
    for column, known in levels.items():
        if column not in frame.columns:
            continue  # reported as a missing column
        text = level_text(frame[column].reset_index(drop=True))
        unknown = text.notna() & ~text.isin(known)
        if not unknown.any():
            continue
        positions = np.flatnonzero(unknown.to_numpy())
        new = sorted(set(text[unknown]))
        problems.append(
            Problem(
                check=KNOWN_LEVELS_CHECK,
                message=f"levels the model was not trained on: {name_list(new, EXAMPLES)} "
                f"(it knows {name_list(known, EXAMPLES)}); retrain with data that has them",
                file=source,
                column=column,
                rows=[int(i) + 1 for i in positions[:EXAMPLES]],
                values=[str(text.iloc[i]) for i in positions[:EXAMPLES]],
                count=len(positions),
            )
        )
    return problems


def null_problems(frame: pd.DataFrame, columns: Iterable[str], source: str | None) -> list[Problem]:
    """A `not_nullable` problem per categorical column with empty cells (scoring's side)."""
    problems = []
    for column in columns:
        if column not in frame.columns:
            continue
        positions = np.flatnonzero(frame[column].isna().to_numpy())
        if positions.size:
            problems.append(
                Problem(
                    check=NULL_CHECK,
                    message="missing values where the model needs a level",
                    file=source,
                    column=column,
                    rows=[int(i) + 1 for i in positions[:EXAMPLES]],
                    values=["nan"] * min(EXAMPLES, positions.size),
                    count=int(positions.size),
                )
            )
    return problems
