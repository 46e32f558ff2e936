"""Data in flight between steps: the table as read, as validated, and the train/holdout plan.

These carry frames and index arrays, so they are dataclasses rather than pydantic models;
every step imports them from here, never from another step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from regflow.schemas.results import Split


@dataclass(frozen=True)
class DatasetFile:
    """One file of a multi-file dataset: its bytes' SHA-256 and the columns it holds, with
    each column's pandas dtype as a read of that file gives it (regflow.io.datasets)."""

    path: str
    size: int
    sha256: str
    rows: int
    columns: tuple[str, ...]
    dtypes: tuple[str, ...]
    # CSV text columns whose values are mostly numbers (a stray cell or two): numbers to the
    # schema check, so validation names the rows instead of the file disagreeing.
    numeric_text: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedData:
    """The table as ingest read it, with the file's SHA-256 fingerprint (for a multi-file
    dataset: the fingerprint of its files' SHA-256, and the files themselves)."""

    frame: pd.DataFrame
    source: str
    format: str
    sha256: str
    n_bytes: int
    files: tuple[DatasetFile, ...] = ()


@dataclass(frozen=True)
class ValidatedData:
    """The chosen columns after validation (and quarantine, when asked for)."""

    frame: pd.DataFrame  # the chosen columns, float64, features then target
    features: list[str]
    target: str
    source: str
    sha256: str
    format: str
    ignored_columns: list[str]
    rows_read: int = 0  # rows in the file, before any quarantine
    # on_invalid="quarantine": every rejected row (row, column, check, value), maybe none;
    # None when invalid rows fail the run instead.
    rejected: pd.DataFrame | None = None
    # --categorical: each column's sorted levels; `features` holds its indicators, not it.
    levels: dict[str, list[str]] = field(default_factory=dict)
    # Ignored columns that are not numeric: the summary suggests --categorical for them.
    text_columns: list[str] = field(default_factory=list)
    # A multi-file dataset's files (the model card lists them); empty for one file.
    files: tuple[DatasetFile, ...] = ()

    @property
    def numeric_features(self) -> list[str]:
        """The features that are columns of the data (not indicators)."""
        return self.features[: len(self.features) - self.n_indicators]

    @property
    def n_indicators(self) -> int:
        return sum(len(levels) - 1 for levels in self.levels.values())

    @property
    def rows_rejected(self) -> int:
        return 0 if self.rejected is None else int(self.rejected["row"].nunique())


@dataclass(frozen=True)
class SplitPlan:
    """Which rows train and which are held out; no holdout means all rows do both."""

    n_rows: int
    train_rows: np.ndarray | None  # None: every row
    holdout_rows: np.ndarray | None
    note: str

    @property
    def fit_split(self) -> Split:
        return "all" if self.holdout_rows is None else "train"

    def labels(self) -> np.ndarray:
        labels = np.full(self.n_rows, "all" if self.holdout_rows is None else "train", dtype=object)
        if self.holdout_rows is not None:
            labels[self.holdout_rows] = "holdout"
        return labels
