"""A verified registry model, ready to score DataFrames against its signature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regflow.errors import InvalidInputError, Problem
from regflow.io.model_files import LinearWeights
from regflow.schemas.categorical import encode, unknown_level_problems
from regflow.schemas.columns import NUMERIC_DTYPE_CHECK, is_numeric_feature, numeric_dtype_message
from regflow.schemas.model_card import ModelCard, Signature
from regflow.stats.linear_predictions import linear_predictions

_EXAMPLES = 5


def _is_numeric(series: pd.Series) -> bool:
    # The rule training applies too (schemas.columns): a model that trains can score.
    return is_numeric_feature(series.dtype)


def _finite(series: pd.Series) -> pd.Series:
    if not _is_numeric(series):
        return pd.Series(True, index=series.index)  # reported once by the dtype check
    return pd.Series(np.isfinite(series.to_numpy(dtype=np.float64)), index=series.index)


def signature_schema(signature: Signature) -> Any:
    """The pandera schema a scoring frame must pass: every feature present and filled, the
    numeric ones numbers and finite (a categorical one's levels are checked after it).

    Extra columns are allowed (ids, the target, anything else the file carries) and ignored.
    """
    import pandera.pandas as pa

    numeric = [
        pa.Check(_is_numeric, name=NUMERIC_DTYPE_CHECK),
        pa.Check(_finite, name="finite"),
    ]
    return pa.DataFrameSchema(
        {
            c.name: pa.Column(nullable=False, checks=numeric if c.kind == "numeric" else [])
            for c in signature.features
        },
        strict=False,
        name="signature",
    )


_MESSAGES = {
    "column_in_dataframe": "required feature is missing",
    "not_nullable": "missing values (null/NaN) where the model needs numbers",
    "finite": "infinite values",
}


def _problems(
    failure_cases: pd.DataFrame, frame: pd.DataFrame, source: str | None
) -> list[Problem]:
    problems: list[Problem] = []
    missing = failure_cases[failure_cases["check"] == "column_in_dataframe"]
    if len(missing):
        names = [str(v) for v in missing["failure_case"]]
        problems.append(
            Problem(
                check="column_in_dataframe",
                message=f"missing feature column(s) {names}; "
                f"the data has {[str(c) for c in frame.columns]}",
                file=source,
                values=names,
                count=len(names),
            )
        )
    rest = failure_cases[failure_cases["check"] != "column_in_dataframe"]
    for (column, check), group in rest.groupby(["column", "check"], sort=False, dropna=False):
        message = _MESSAGES.get(str(check), f"check {check} failed")
        if check == NUMERIC_DTYPE_CHECK:
            message = numeric_dtype_message(frame[column])
        shown = group[group["index"].notna()].head(_EXAMPLES)
        # 1-based positions, as training reports them: row 1 is the first data row.
        rows = [int(i) + 1 for i in shown["index"] if isinstance(i, int | np.integer)]
        values = [str(v) for v in shown["failure_case"]][: len(rows)] if rows else []
        problems.append(
            Problem(
                check=str(check),
                message=message,
                file=source,
                column=str(column),
                rows=rows,
                values=values,
                count=int(group["index"].notna().sum()) or None,
            )
        )
    return problems


class Predictor:
    """A registry version loaded after every file was verified against its manifest."""

    def __init__(
        self,
        *,
        name: str,
        version: int,
        requested_ref: str,
        signature: Signature,
        weights: LinearWeights,
        card: ModelCard,
        manifest_sha256: str,
    ):
        if weights.coef.shape != (len(signature.encoded_names),):
            raise ValueError(
                f"{name}:{version}: weights have {weights.coef.shape} coefficients, "
                f"the signature names {len(signature.encoded_names)} features"
            )
        self.name = name
        self.version = version
        self.requested_ref = requested_ref
        self.signature = signature
        self.weights = weights
        self.card = card
        self.manifest_sha256 = manifest_sha256

    @property
    def ref(self) -> str:
        """The exact version this predictor is, as `name:version`."""
        return f"{self.name}:{self.version}"

    @property
    def feature_names(self) -> list[str]:
        return self.signature.feature_names

    @property
    def encoded_names(self) -> list[str]:
        """The model's columns, one per coefficient (indicators for categorical inputs)."""
        return self.signature.encoded_names

    @property
    def target(self) -> str:
        return self.signature.target.name

    def extra_columns(self, frame: pd.DataFrame) -> list[str]:
        """Columns of `frame` the model ignores."""
        wanted = set(self.feature_names)
        return [str(c) for c in frame.columns if c not in wanted]

    def validate(self, frame: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
        """The model's columns (`encoded_names`) as float64, or InvalidInputError listing
        every problem: a categorical input is expanded into its indicators."""
        from pandera.errors import SchemaErrors

        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError.single(
                source, "input_type", f"expected a pandas DataFrame, got {type(frame).__name__}"
            )
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise InvalidInputError.single(
                source, "unique_columns", f"duplicated column names {duplicated}"
            )
        problems: list[Problem] = []
        if not self._plainly_valid(frame):
            try:
                # Positions, whatever the index: a row number must find the row in the file.
                positional = frame.reset_index(drop=True)
                signature_schema(self.signature).validate(positional, lazy=True)
            except SchemaErrors as exc:
                problems = _problems(exc.failure_cases, frame, source)
        problems += unknown_level_problems(frame, self.signature.categorical, source)
        if problems:
            raise InvalidInputError(source, problems)
        return self.encode(frame)

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's columns of a validated frame: numeric features as float64, then the
        indicators of each categorical one (the order of the coefficients)."""
        numeric = frame.loc[:, self.signature.numeric_names].astype(np.float64)
        levels = self.signature.categorical
        if not levels:
            return numeric
        return pd.concat([numeric, encode(frame, levels)], axis=1).loc[:, self.encoded_names]

    def _plainly_valid(self, frame: pd.DataFrame) -> bool:
        """Every numeric feature a plain numpy integer or float column without NaN or
        infinity, every categorical one present and filled.

        The common case, screened in one pass per column; anything else goes through the
        pandera schema, whose report lists every problem. Pandera took ~1 s on 2M x 10.
        """
        for name in self.signature.categorical:
            if name not in frame.columns or frame[name].isna().any():
                return False
        for name in self.signature.numeric_names:
            if name not in frame.columns:
                return False
            dtype = frame[name].dtype
            if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
                return False
            if dtype.kind == "f" and not np.isfinite(frame[name].to_numpy()).all():
                return False
        return True

    def predict(self, frame: pd.DataFrame, *, source: str | None = None) -> np.ndarray:
        """Predictions in the target's original units (float64), one per row of `frame`."""
        return self.predict_encoded(self.validate(frame, source=source))

    def predict_encoded(self, encoded: pd.DataFrame) -> np.ndarray:
        """Predictions from the model's own float64 columns (`encoded_names`), unchecked:
        for frames that training or `validate` already checked."""
        return linear_predictions(
            encoded, self.encoded_names, self.weights.coef.tolist(), self.weights.intercept
        )

    def __repr__(self) -> str:
        return f"Predictor({self.ref}, features={self.feature_names}, target={self.target!r})"
