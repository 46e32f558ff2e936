"""The pandera schema for a training dataset, built for the chosen columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from regflow.errors import InvalidInputError, Problem

if TYPE_CHECKING:
    from pandas._typing import ScalarOrNA

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


def _column(role: str, table_checks: bool = True) -> pa.Column:
    constant = [pa.Check(_not_constant, name="not_constant", ignore_na=True)]
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
            *(constant if table_checks else []),
        ],
    )


def dataset_schema(
    features: list[str], target: str, *, table_checks: bool = True
) -> pa.DataFrameSchema:
    """The schema; without `table_checks` only what one row decides (a partition of a larger
    dataset: its row count and constant columns are judged on the whole, from merged sums)."""
    columns = {name: _column("feature", table_checks) for name in features}
    columns[target] = _column("target", table_checks)
    checks = [pa.Check(lambda df: len(df) >= MIN_ROWS, name=f"at_least_{MIN_ROWS}_rows")]
    return pa.DataFrameSchema(
        columns,
        checks=checks if table_checks else [],
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
    for (column, check_key), group in failures.groupby(
        ["column", "check"], sort=False, dropna=False
    ):
        # The stubs type group keys as Hashable; these are scalars: pandera's column name (or a
        # missing value) and the check names made above.
        check = str(check_key)
        # A column may really be named "" or "None": only the row-count check has none.
        col = None if pd.isna(cast("ScalarOrNA", column)) else str(column)
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


def _plainly_valid(selected: pd.DataFrame, table_checks: bool = True) -> bool:
    """True only where the schema is sure to pass: plain numpy numbers, two passes a column.

    pandera runs each check as its own pass with Series temporaries (coercion copies, isna,
    to_numeric, abs, ...): at 10M rows that cost more than reading the file. Data that passes
    this screen passes every check of the schema; anything else, and every failure, goes
    through pandera, so its reports are unchanged.
    """
    if (table_checks and len(selected) < MIN_ROWS) or not selected.columns.is_unique:
        return False
    for _, column in selected.items():
        dtype = column.dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "fiu":
            return False  # bool, object, strings, nullable and arrow dtypes: pandera decides
        values = column.to_numpy()
        low, high = values.min(), values.max()  # NaN propagates into both
        if dtype.kind == "f" and not (low >= -FLOAT32_MAX and high <= FLOAT32_MAX):
            return False  # NaN, infinite or beyond float32
        if table_checks and not high > low:
            return False  # constant
    return True


def _select(frame: pd.DataFrame, features: list[str], target: str) -> pd.DataFrame:
    selected = frame.loc[:, [*features, target]]
    # Row numbers in messages are positions (1 = first data row), whatever index a Parquet
    # file brought along (strings, dates, duplicates).
    if not (isinstance(selected.index, pd.RangeIndex) and selected.index.start == 0):
        selected = selected.reset_index(drop=True)
    return selected


def _validate_selected(
    selected: pd.DataFrame,
    features: list[str],
    target: str,
    source: str | None,
    note: str = "",
    table_checks: bool = True,
) -> pd.DataFrame:
    if _plainly_valid(selected, table_checks):
        return selected.astype(np.float64)
    if len(selected) == 0:
        if not table_checks:
            return selected.astype(np.float64)
        note += ": no data rows, only column names"
    schema = dataset_schema(features, target, table_checks=table_checks)
    try:
        valid = schema.validate(selected, lazy=True)
    except SchemaErrors as err:
        problems = problems_from_failures(err.failure_cases, source)
        problems = [
            Problem(
                check=p.check, message=f"{p.message} (found {len(selected)}{note})", file=source
            )
            if p.check == f"at_least_{MIN_ROWS}_rows"
            else p
            for p in problems
        ]
        raise InvalidInputError(source, problems) from None
    return valid.astype(np.float64)


def validate_frame(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    source: str | None,
    *,
    table_checks: bool = True,
) -> pd.DataFrame:
    """Validate the chosen columns lazily (every failure collected); return them as float64."""
    selected = _select(frame, features, target)
    return _validate_selected(selected, features, target, source, table_checks=table_checks)


def check_frame(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    source: str | None,
    *,
    table_checks: bool = True,
) -> None:
    """validate_frame's verdict without its float64 copy of the columns, for callers that
    read the values themselves (a dask worker: the copies were a tenth of its scan)."""
    names = [*features, target]
    if frame.columns.is_unique and len(set(names)) == len(names) and set(names) <= set(frame):
        view = pd.DataFrame({name: frame[name] for name in names}, copy=False)
        if _plainly_valid(view, table_checks):
            return
    validate_frame(frame, features, target, source, table_checks=table_checks)


# Checks that judge one value, so one row: quarantine can set such a row aside. The others
# (row count, constant column, missing column) judge the table and always fail the run.
ROW_CHECKS = ("coerce_dtype", "not_nullable", "finite", "within_float32_range")
QUARANTINE_COLUMNS = ["row", "column", "check", "value"]
MAX_SCREENS = 5  # pandera may report a row's second failure only once the first is gone


def too_many_invalid(rejected: int, total: int, max_fraction: float, source: str | None) -> Problem:
    """Quarantine would set aside more than --max-invalid-fraction of the rows."""
    return Problem(
        check="max_invalid_fraction",
        message=f"{rejected} of {total} rows ({rejected / total:.1%}) failed a row check; at "
        f"most {max_fraction:.1%} may be quarantined (--max-invalid-fraction)",
        file=source,
        count=rejected,
    )


@dataclass(frozen=True)
class Screened:
    """The rows that passed every row check, and every rejected row with what it failed."""

    frame: pd.DataFrame  # valid rows as float64, index 0..n-1
    rejected: pd.DataFrame  # QUARANTINE_COLUMNS; row is the 1-based data row number
    rows_total: int


def _row_failures(failures: pd.DataFrame) -> pd.DataFrame:
    checks = failures["check"].astype(str).map(_check_name)
    rows = failures[checks.isin(ROW_CHECKS) & failures["index"].notna()]
    return pd.DataFrame(
        {
            "row": rows["index"].astype(np.int64) + 1,
            "column": rows["column"].astype(str),
            "check": checks[rows.index],
            "value": rows["failure_case"].map(str),  # NaN as "nan", as in the messages
        }
    )


def screen_frame(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    source: str | None,
    *,
    max_invalid_fraction: float,
    table_checks: bool = True,
) -> Screened:
    """Quarantine: set aside rows that fail a row check, then validate the rest as a table.

    Fails (InvalidInputError) when the rejected share of rows exceeds max_invalid_fraction,
    or when what is left fails a table check (too few rows, a constant column).
    """
    selected = _select(frame, features, target)
    total = len(selected)
    rejected: list[pd.DataFrame] = []
    remaining = selected
    problems: list[Problem] = []
    schema: pa.DataFrameSchema | None = None  # built only when needed: seconds at 10k columns
    for _ in range(MAX_SCREENS):
        if _plainly_valid(remaining, table_checks):
            break
        schema = schema or dataset_schema(features, target, table_checks=table_checks)
        try:
            schema.validate(remaining, lazy=True)
            break
        except SchemaErrors as err:
            bad = _row_failures(err.failure_cases)
            if bad.empty:
                break  # only table checks failed: judged below on what is left
            found = problems_from_failures(err.failure_cases, source)
            problems += [p for p in found if p.check in ROW_CHECKS]
            rejected.append(bad)
            remaining = remaining.drop(index=pd.Index(bad["row"].unique() - 1))
    if rejected:
        rejected_rows = pd.concat(rejected, ignore_index=True).sort_values(
            ["row", "column"], kind="stable", ignore_index=True
        )
    else:
        rejected_rows = pd.DataFrame({c: pd.Series(dtype=object) for c in QUARANTINE_COLUMNS})
    n_rejected = int(rejected_rows["row"].nunique())
    if total and n_rejected / total > max_invalid_fraction:
        problems.append(too_many_invalid(n_rejected, total, max_invalid_fraction, source))
        raise InvalidInputError(source, problems)
    note = f" after quarantining {n_rejected} rows" if n_rejected else ""
    valid = _validate_selected(remaining, features, target, source, note, table_checks)
    return Screened(valid.reset_index(drop=True), rejected_rows, total)
