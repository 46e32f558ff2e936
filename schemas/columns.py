"""Column rules that training and scoring share, so a model that trains can always score.

`regflow train` and `regflow predict` (the predictor's screen) both call these: a column
accepted on one side and refused on the other would make a champion that can never score.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from regflow.errors import Problem

# Scoring adds these to its output; an input column of the same name would be overwritten.
PREDICTION_COLUMN = "predicted"
VERSION_COLUMN = "model_version"
REF_COLUMN = "model_ref"
RESERVED_COLUMNS = (PREDICTION_COLUMN, VERSION_COLUMN, REF_COLUMN)

NUMERIC_DTYPE_CHECK = "numeric_dtype"
RESERVED_COLUMN_CHECK = "reserved_column"
SNIFF_ROWS = 1000  # values looked at to tell an object column of booleans or numbers


def is_numeric_feature(dtype: Any) -> bool:
    """Integers or floats: what the model's float64 signature takes without guessing.

    Booleans are refused, not coerced: True/False as 1.0/0.0 is a choice for the user to make
    explicitly, and making it on one side only is how train and predict came to disagree.
    """
    return bool(
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def is_boolean(column: pd.Series) -> bool:
    """A bool dtype, or an object column of True/False: Parquet booleans with nulls read so."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return True
    if column.dtype != object:
        return False
    sample = column.dropna().head(SNIFF_ROWS)
    return len(sample) > 0 and all(isinstance(v, bool | np.bool_) for v in sample)


def numbers_as_text(column: pd.Series) -> bool:
    """A text column whose first values are mostly numbers: a numeric column with a few
    stray strings (still a feature, and the same kind of column as its numeric twin in
    another file: validation names the stray rows)."""
    if pd.api.types.is_numeric_dtype(column.dtype) or is_boolean(column):
        return False
    sample = column.dropna().head(SNIFF_ROWS)
    return len(sample) > 0 and pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.5


def numeric_dtype_message(column: pd.Series) -> str:
    """Why a feature column's dtype is refused, and what to do (same text on both sides)."""
    if is_boolean(column):
        return (
            f"booleans are not accepted as features (found dtype {column.dtype}): convert them "
            "to 0/1, the model's features are float64"
        )
    return f"must be numeric (integers or floats), found dtype {column.dtype}"


def dtype_problems(frame: pd.DataFrame, names: Iterable[str], source: str | None) -> list[Problem]:
    """A `numeric_dtype` problem per named column whose dtype can never be a feature.

    Only dtypes refused whatever the values (booleans, complex numbers) are judged here: a
    text column may hold numbers, and the value checks name its bad rows.
    """
    problems = []
    for name in names:
        if name not in frame.columns or not frame.columns.is_unique:
            continue  # reported as column_present / unique_column_names
        column = frame[name]
        if is_boolean(column) or pd.api.types.is_complex_dtype(column.dtype):
            problems.append(
                Problem(
                    check=NUMERIC_DTYPE_CHECK,
                    message=numeric_dtype_message(column),
                    file=source,
                    column=name,
                )
            )
    return problems


def reserved_problems(names: Iterable[str], source: str | None, message: str) -> list[Problem]:
    """A `reserved_column` problem per name that scoring writes into its output."""
    return [
        Problem(check=RESERVED_COLUMN_CHECK, message=message, file=source, column=name)
        for name in dict.fromkeys(names)
        if name in RESERVED_COLUMNS
    ]
