"""A verified registry model, ready to score DataFrames against its signature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regflow.errors import InvalidInputError, Problem
from regflow.io.model_files import LinearWeights
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
    """The pandera schema a scoring frame must pass: every feature numeric, present, finite.

    Extra columns are allowed (ids, the target, anything else the file carries) and ignored.
    """
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            name: pa.Column(
                nullable=False,
                checks=[
                    pa.Check(_is_numeric, name=NUMERIC_DTYPE_CHECK),
                    pa.Check(_finite, name="finite"),
                ],
            )
            for name in signature.feature_names
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
        if weights.coef.shape != (len(signature.features),):
            raise ValueError(
                f"{name}:{version}: weights have {weights.coef.shape} coefficients, "
                f"the signature names {len(signature.features)} features"
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
    def target(self) -> str:
        return self.signature.target.name

    def extra_columns(self, frame: pd.DataFrame) -> list[str]:
        """Columns of `frame` the model ignores."""
        wanted = set(self.feature_names)
        return [str(c) for c in frame.columns if c not in wanted]

    def validate(self, frame: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
        """The feature columns as float64, or InvalidInputError listing every problem."""
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
        if self._plainly_valid(frame):
            return frame.loc[:, self.feature_names].astype(np.float64)
        try:
            # Positions, whatever the index: a row number must find the row in the file.
            positional = frame.reset_index(drop=True)
            signature_schema(self.signature).validate(positional, lazy=True)
        except SchemaErrors as exc:
            raise InvalidInputError(source, _problems(exc.failure_cases, frame, source)) from None
        return frame.loc[:, self.feature_names].astype(np.float64)

    def _plainly_valid(self, frame: pd.DataFrame) -> bool:
        """Every feature a plain numpy integer or float column without NaN or infinity.

        The common case, screened in one pass per column; anything else goes through the
        pandera schema, whose report lists every problem. Pandera took ~1 s on 2M x 10.
        """
        for name in self.feature_names:
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
        valid = self.validate(frame, source=source)
        return linear_predictions(
            valid, self.feature_names, self.weights.coef.tolist(), self.weights.intercept
        )

    def __repr__(self) -> str:
        return f"Predictor({self.ref}, features={self.feature_names}, target={self.target!r})"
