"""Neutralise spreadsheet formulas in the text cells of a frame about to be written as CSV.

A spreadsheet opening a CSV file runs a cell that begins with `=`, `+`, `-` or `@` as a
formula (and a leading tab or carriage return can hide such a start), so a cell copied from
untrusted data could run commands or leak data ("CSV injection"). As OWASP recommends, such
a text cell is written with a single quote `'` in front: spreadsheets show the text, and
a reader sees what was prefixed.

The rule:

- only text cells change (Python `str` values in object, string or categorical columns);
  numbers, booleans, dates and missing values, and every numeric column, are left as they
  are, so -3.5 in a float column stays -3.5;
- a text cell that starts with `+` or `-` and is a plain decimal number as a whole
  ("-3.5", "+1e5", "-inf", "-nan", any case) is data, not a formula, and is left as it
  is: a spreadsheet reads it as that number, and nothing else can follow the sign;
- every other text cell that starts with `=`, `+`, `-`, `@`, tab or carriage return gets
  the quote.

Column names are not changed (they are the schema a reader relies on). Parquet output is
typed and never executed, so it is written raw.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["neutralise_formulas"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Signed decimal or scientific number, or a signed inf/nan: all a sign may start as data.
_PLAIN_NUMBER = re.compile(
    r"[+-](?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE
)


def _neutralise(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells cannot run as spreadsheet formulas (rule above)."""
    safe = frame.copy(deep=False)  # columns are replaced, never changed in place
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if isinstance(column.dtype, pd.CategoricalDtype):
            # As plain values: renamed categories could collide ("=x" and "'=x").
            column = column.astype(object)
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            safe.isetitem(position, column.map(_neutralise, na_action="ignore").array)
    return safe
