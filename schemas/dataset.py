"""The pandera schema for a training dataset, built for the chosen columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from regflow.errors import InvalidInputError, Problem

MIN_ROWS = 3
FLOAT32_MAX = float(np.finfo(np.float32).max)
EXAMPLES = 5


def _numeric(s: pd.Series) -> pd.Series:
    # Values that fail coercion are reported by the dtype check; here they must not crash.
    return pd.to_numeric(s, errors="coerce")


def _not_constant(s: pd.Series) -> bool:
    values = _numeric(s)
    # An empty column is the row-count check's failure, not this one's.
    return values.notna().sum() == 0 or bool(values.max() > values.min())


def _column(role: str) -> pa.Column:
    return pa.Column(
        float,
        coerce=True,
        nullable=False,
        title=role,
        checks=[
            pa.Check(lambda s: ~np.isinf(_numeric(s)), name="finite"),
            pa.Check(
                lambda s: ~(np.isfinite(_numeric(s)) & (_numeric(s).abs() > FLOAT32_MAX)),
                name="within_float32_range",
            ),
            pa.Check(_not_constant, name="not_constant", ignore_na=True),
        ],
    )


def dataset_schema(features: list[str], target: str) -> pa.DataFrameSchema:
    columns = {name: _column("feature") for name in features}
    columns[target] = _column("target")
    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(lambda df: len(df) >= MIN_ROWS, name=f"at_least_{MIN_ROWS}_rows")],
        unique_column_names=True,
        strict=False,
    )


CHECK_MESSAGES = {
    "coerce_dtype": "values are not numbers",
    "not_nullable": "empty or NaN values",
    "finite": "infinite values",
    "within_float32_range": f"values beyond float32's range (|x| > {FLOAT32_MAX:.3g})",
    "not_constant": "the column has a single value: it carries no information",
    f"at_least_{MIN_ROWS}_rows": f"fewer than {MIN_ROWS} rows",
    "column_in_schema": "column not found",
}


def _check_name(raw: str) -> str:
    return "coerce_dtype" if raw.startswith("coerce_dtype") else raw


def problems_from_failures(failures: pd.DataFrame, source: str | None) -> list[Problem]:
    """Turn pandera's failure cases into one Problem per (column, check), with example rows."""
    failures = failures.copy()
    failures["check"] = failures["check"].astype(str).map(_check_name)
    # A value that cannot be coerced also fails the dtype check: report it once.
    failures = failures[~failures["check"].str.startswith("dtype(")]
    problems: list[Problem] = []
    for (column, check), group in failures.groupby(["column", "check"], sort=False, dropna=False):
        col = None if pd.isna(column) or column in ("", "None") else str(column)
        rows = [int(i) + 1 for i in group["index"].dropna().head(EXAMPLES)]
        values = [str(v) for v in group.loc[group["index"].notna(), "failure_case"].head(EXAMPLES)]
        count = int(group["index"].notna().sum()) or None
        message = CHECK_MESSAGES.get(check, check)
        if check == f"at_least_{MIN_ROWS}_rows":
            col = None
        problems.append(
            Problem(
                check=check,
                message=message,
                file=source,
                column=col,
                rows=rows,
                values=values,
                count=count,
            )
        )
    return problems


def _plainly_valid(selected: pd.DataFrame) -> bool:
    """True only where the schema is sure to pass: plain numpy numbers, two passes a column.

    pandera runs each check as its own pass with Series temporaries (coercion copies, isna,
    to_numeric, abs, ...): at 10M rows that cost more than reading the file. Data that passes
    this screen passes every check of the schema; anything else, and every failure, goes
    through pandera, so its reports are unchanged.
    """
    if len(selected) < MIN_ROWS or not selected.columns.is_unique:
        return False
    for _, column in selected.items():
        dtype = column.dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "fiu":
            return False  # bool, object, strings, nullable and arrow dtypes: pandera decides
        values = column.to_numpy()
        low, high = values.min(), values.max()  # NaN propagates into both
        if dtype.kind == "f" and not (low >= -FLOAT32_MAX and high <= FLOAT32_MAX):
            return False  # NaN, infinite or beyond float32
        if not high > low:
            return False  # constant
    return True


def validate_frame(
    frame: pd.DataFrame, features: list[str], target: str, source: str | None
) -> pd.DataFrame:
    """Validate the chosen columns lazily (every failure collected); return them as float64."""
    selected = frame.loc[:, [*features, target]]
    if _plainly_valid(selected):
        return selected.astype(np.float64, copy=False)
    schema = dataset_schema(features, target)
    try:
        valid = schema.validate(selected, lazy=True)
    except SchemaErrors as err:
        problems = problems_from_failures(err.failure_cases, source)
        problems = [
            Problem(check=p.check, message=f"{p.message} (found {len(selected)})", file=source)
            if p.check == f"at_least_{MIN_ROWS}_rows"
            else p
            for p in problems
        ]
        raise InvalidInputError(source, problems) from None
    return valid.astype(np.float64, copy=False)
