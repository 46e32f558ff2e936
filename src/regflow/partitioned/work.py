"""What a Dask worker does with one file of a partitioned dataset (the dask engine's passes).

Every function here reads one file, keeps the rows validation kept, and returns sums that
merge (moments, residual sums, metric sums) or a bounded sample: nothing n-long leaves a
worker. They are plain module-level functions of picklable values, so the scheduler can
send them anywhere and run them again on another worker when one dies.

Row positions are global: a file's rows are numbered from `Part.first_row`, the count of
rows in the files before it (sorted by path), so the holdout and the sample are the same
rows whatever the files' sizes or the number of workers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from regflow.errors import InvalidInputError, Problem
from regflow.io.datasets import (
    DatasetFile,
    load_partition,
    outline_file,
    read_float_columns,
    read_partition,
)
from regflow.io.hashing import FileDigest
from regflow.io.predictions import predictions_table, write_predictions_part
from regflow.partitioned.gpu_moments import torch_moments
from regflow.runtime.faults import kill_once
from regflow.schemas.categorical import (
    as_source_columns,
    column_levels,
    indicator_names,
    rejected_by_source_column,
    with_indicators,
)
from regflow.schemas.dataset import check_frame, screen_frame
from regflow.stats.linear_predictions import linear_combination
from regflow.stats.metrics import MetricSums
from regflow.stats.moment_sweeps import (
    Data,
    Moments,
    Residuals,
    Solution,
    partition_moments,
    partition_residuals,
)
from regflow.stats.partition_qr import (
    QRResiduals,
    QRSolution,
    partition_qr_residuals,
    partition_r,
)
from regflow.stats.splitting import holdout_mask, sampled_rows

PART_NAME = "part-{index:05d}.parquet"
LEVELS_PER_FILE = 10_000  # a categorical column's levels sent back per file, at most


@dataclass(frozen=True)
class Part:
    """One file and where its rows start in the dataset."""

    index: int
    path: str
    first_row: int
    rows: int
    needs_sha256: bool = False  # described from its footer: the validate pass hashes it


Item = tuple[Part, np.ndarray]  # a file, and the positions validation set aside in it


@dataclass(frozen=True)
class Columns:
    """What every pass needs to know about the columns, the split and the outputs."""

    features: list[str]
    target: str
    quarantine: bool  # on_invalid="quarantine": set invalid rows aside (else report them)
    holdout: float  # share of rows held out; 0: none
    seed: int
    sample_fraction: float  # share of rows drawn into the sample (Spearman, plots, summaries)
    quarantine_dir: str | None = None
    device: str = "cpu"  # the training device: "cuda" puts the cross products on a worker's GPU
    # --categorical: each column's levels; `features` then ends with their indicators
    levels: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Scanned:
    """Pass 1 on one file: validation's verdict, moments per split and the sampled rows."""

    index: int
    rows_read: int
    problems: list[Problem] = field(default_factory=list)
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rejected: int = 0  # rows quarantine set aside (dropped holds their positions)
    by_check: dict[str, int] = field(default_factory=dict)  # rejected rows per failed check
    all: Moments | None = None
    train: Moments | None = None
    holdout: Moments | None = None
    sample: pd.DataFrame | None = None
    file: DatasetFile | None = None  # the file as read and hashed here (Part.needs_sha256)


@dataclass
class Evaluated:
    """Pass 3 on one file: metric sums per split, the reference's and the champion's."""

    index: int
    metrics: dict[str, MetricSums]
    reference: MetricSums | None
    champion: MetricSums | None
    predictions_file: str
    predictions_digest: FileDigest
    gate: Residuals | None = None  # the gate's residual diagnostics, when it deferred them


@dataclass(frozen=True)
class Linear:
    """Coefficients in original units, in the order of `names`."""

    names: list[str]
    coef: list[float]
    intercept: float


def describe_or_problem(path: str) -> DatasetFile | list[Problem]:
    """outline_file (a Parquet file's footer; its hash waits for the validate pass), with a
    failure returned as its problems (see scan_partition)."""
    try:
        return outline_file(path)
    except InvalidInputError as err:
        return list(err.problems)


def _float_columns(frame: pd.DataFrame, cols: Columns) -> list[np.ndarray]:
    return [_as_float(frame[name]) for name in [*cols.features, cols.target]]


def _as_float(column: pd.Series) -> np.ndarray:
    """A column as contiguous float64: a float64 column as it is (to_numeric copied every
    column of every file, a fifth of the validate pass), anything else coerced."""
    if column.dtype == np.float64:
        return np.ascontiguousarray(column.to_numpy())
    return np.ascontiguousarray(pd.to_numeric(column, errors="coerce"), dtype=np.float64)


def _read_columns(part: Part, cols: Columns) -> list[np.ndarray]:
    """Every feature column and the target of a file that validation passed, as float64:
    straight from Arrow where it can (only these columns, no frame), else via read_partition
    (and the categorical columns' indicators)."""
    values = None if cols.levels else read_float_columns(part.path, [*cols.features, cols.target])
    if values is None:
        return _float_columns(_table(read_partition(part.path), cols), cols)
    return values


def _table(frame: pd.DataFrame, cols: Columns) -> pd.DataFrame:
    """The file's frame as validation checks it: with --categorical, the numeric features,
    the indicators (from the levels every file's values made) and the target."""
    if not cols.levels:
        return frame
    indicators = {n for c, known in cols.levels.items() for n in indicator_names(c, known)}
    numeric = [name for name in cols.features if name not in indicators]
    return with_indicators(frame, numeric, cols.target, cols.levels)[0]


def file_levels(path: str, columns: list[str]) -> dict[str, list[str]] | list[Problem]:
    """The levels (as text) of the categorical columns in one file, at most LEVELS_PER_FILE
    each (a column of ids is refused as max_levels either way)."""
    try:
        frame = read_partition(path)
    except InvalidInputError as err:
        return list(err.problems)
    return {c: column_levels(frame[c])[:LEVELS_PER_FILE] for c in columns}


def _kept_positions(rows: int, dropped: np.ndarray) -> np.ndarray:
    """Local positions of the rows validation kept (all but `dropped`)."""
    if not len(dropped):
        return np.arange(rows, dtype=np.int64)
    return np.setdiff1d(np.arange(rows, dtype=np.int64), dropped, assume_unique=True)


def _kept_arrays(
    values: list[np.ndarray], dropped: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Feature columns and target (the kept rows only) and their local positions."""
    rows = len(values[-1])
    kept = _kept_positions(rows, dropped)
    if len(kept) < rows:  # copying every column for nothing cost a third of the scan
        values = [column[kept] for column in values]
    return values[:-1], values[-1], kept


def _split_masks(part: Part, kept: np.ndarray, cols: Columns) -> np.ndarray:
    """True where a kept row is held out (a function of its global position and the seed)."""
    if cols.holdout <= 0:
        return np.zeros(len(kept), dtype=bool)
    return holdout_mask(part.first_row + kept, cols.seed, cols.holdout)


def _moments(
    columns: list[np.ndarray], y: np.ndarray, rows: np.ndarray | None, device: str = "cpu"
) -> Moments:
    data = Data(columns, y, rows)
    if device == "cuda" and _has_cuda():
        return torch_moments(data, device)
    return partition_moments(data)


def _has_cuda() -> bool:
    import torch  # only asked for on a run that trains on CUDA

    return bool(torch.cuda.is_available())


def scan_partition(part: Part, cols: Columns) -> Scanned:
    """Pass 1: validate the file, then the moments of every row, the training rows and the
    held-out rows, and the sampled rows. Problems come back as data (exceptions with
    structured arguments do not survive pickling)."""
    described = None
    try:
        if part.needs_sha256:  # one read for the hash and the data
            described, frame = load_partition(part.path)
        else:
            frame = read_partition(part.path)
        frame = _table(frame, cols)
        dropped = np.zeros(0, dtype=np.int64)
        if cols.quarantine:
            screened = screen_frame(
                frame, cols.features, cols.target, part.path,
                max_invalid_fraction=1.0, table_checks=False,
            )  # fmt: skip
            rejected = rejected_by_source_column(screened.rejected, cols.levels)
            dropped = np.unique(rejected["row"].to_numpy(dtype=np.int64) - 1)
            if len(rejected) and cols.quarantine_dir is not None:
                _write_quarantine(rejected, part, cols.quarantine_dir)
        else:
            check_frame(frame, cols.features, cols.target, part.path, table_checks=False)
    except InvalidInputError as err:
        problems = as_source_columns(err, cols.levels).problems if cols.levels else err.problems
        return Scanned(part.index, part.rows, problems=list(problems), file=described)
    columns, y, kept = _kept_arrays(_float_columns(frame, cols), dropped)
    held = _split_masks(part, kept, cols)
    result = Scanned(part.index, len(frame), dropped=dropped, rejected=len(dropped), file=described)
    if cols.quarantine and len(dropped):
        per_check = rejected.drop_duplicates(["row", "check"])["check"].value_counts()
        result.by_check = {str(k): int(v) for k, v in per_check.items()}
    if cols.holdout > 0:  # every row's moments merged from the two splits': one sweep less
        result.train = _moments(columns, y, np.flatnonzero(~held), cols.device)
        result.holdout = _moments(columns, y, np.flatnonzero(held), cols.device)
        result.all = result.train.merged(result.holdout)
    else:
        result.all = _moments(columns, y, None, cols.device)
    positions = part.first_row + kept
    drawn = sampled_rows(positions, cols.sample_fraction)
    chosen = np.arange(len(positions)) if drawn is None else drawn
    sample = pd.DataFrame(
        {name: values[chosen] for name, values in zip(cols.features, columns, strict=True)}
    )
    sample[cols.target] = y[chosen]
    sample["__position"] = positions[chosen]
    sample["__holdout"] = held[chosen]
    result.sample = sample
    return result


def _write_quarantine(rejected: pd.DataFrame, part: Part, folder: str) -> None:
    table = rejected.astype({"value": str}).assign(file=part.path, row=rejected["row"])
    table = table[["file", "row", "column", "check", "value"]]
    Path(folder).mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pandas(table, preserve_index=False),
        Path(folder) / PART_NAME.format(index=part.index),
    )


def _data(
    part: Part,
    cols: Columns,
    dropped: np.ndarray,
    rows: str = "all",
    values: list[np.ndarray] | None = None,
) -> Data:
    """The file's kept rows (or only its training rows) as sweep input, by local position;
    `values`: the file's columns, already read."""
    columns = _read_columns(part, cols) if values is None else values
    n = len(columns[-1])
    kept = _kept_positions(n, dropped)
    if rows == "train":
        kept = kept[~_split_masks(part, kept, cols)]
    index = None if len(kept) == n else kept
    return Data(columns[:-1], columns[-1], index)


def gate_residuals(item: Item, cols: Columns, fit: Solution) -> Residuals:
    """The gate's own pass (moment route, where it cannot wait for the evaluation pass):
    residual sums and maxima (leverage, Cook's distance, RESET) for the coefficients fitted
    on every row; maxima name global row positions."""
    part, dropped = item
    data = _data(part, cols, dropped)
    return partition_residuals(data, fit, diagnostics=True, row_offset=part.first_row)


def r_factor(
    item: Item, cols: Columns, moments: Moments, fit_intercept: bool, rows: str
) -> np.ndarray:
    """The tall-skinny QR route: this file's R factor (every kept row, or the training rows)."""
    part, dropped = item
    data = _data(part, cols, dropped, rows)
    return partition_r(data, moments, fit_intercept=fit_intercept)


def qr_residuals(item: Item, cols: Columns, fit: QRSolution) -> QRResiduals:
    """Pass 2 (QR route): residual sums and maxima for the fit read off the merged R."""
    part, dropped = item
    data = _data(part, cols, dropped)
    return partition_qr_residuals(data, fit, row_offset=part.first_row)


def predict_linear(columns: list[np.ndarray], model: Linear) -> np.ndarray:
    """intercept + sum of coef * column, summed as linear_predictions sums (bit for bit)."""
    rows = len(columns[0]) if columns else 0
    return linear_combination(columns, model.coef, model.intercept, rows=rows)


def evaluate_partition(
    item: Item,
    cols: Columns,
    model: Linear,
    reference: Linear | None,
    champion: Linear | None,
    predictions_dir: str,
    gate_fit: Solution | None = None,
) -> Evaluated:
    """The last pass: predictions of the kept rows written as one Parquet part (true,
    predicted, residual, split: the columns of a local run's predictions), and metric sums
    per split for the model, for the float64 reference (on the training rows) and for the
    champion (on the evaluation rows). Given the gate's fit, also the gate's residual sums
    and maxima (as gate_residuals: one read of the file serves both)."""
    part, dropped = item
    kill_once(f"dask:evaluate:{part.index}")
    values = _read_columns(part, cols)
    columns, y, kept = _kept_arrays(values, dropped)
    held = _split_masks(part, kept, cols)
    predicted = predict_linear(columns, model)
    has_holdout = cols.holdout > 0
    target = Path(predictions_dir) / PART_NAME.format(index=part.index)
    target.parent.mkdir(parents=True, exist_ok=True)
    table = predictions_table(y, predicted, held if has_holdout else None)
    # Encoded and written on a thread while this one sums; on disk before the task ends, so
    # a finished task's part survives its worker, and a failed one writes nothing after it
    # (the run then removes its folder).
    writing = _WRITER.submit(write_predictions_part, table, target)
    try:
        gate = None
        if gate_fit is not None:
            data = _data(part, cols, dropped, values=values)
            gate = partition_residuals(data, gate_fit, diagnostics=True, row_offset=part.first_row)
        metrics = {"all": MetricSums.of_arrays(y, predicted)}
        fit_rows = eval_rows = None  # None: every row (no copies of the columns)
        if has_holdout:
            fit_rows, eval_rows = ~held, held
            metrics["train"] = MetricSums.of_arrays(y[fit_rows], predicted[fit_rows])
            metrics["holdout"] = MetricSums.of_arrays(y[held], predicted[held])
        ref = None if reference is None else _scored(columns, y, fit_rows, cols, reference)
        champ = None if champion is None else _scored(columns, y, eval_rows, cols, champion)
    finally:
        wait([writing])
    return Evaluated(part.index, metrics, ref, champ, str(target), writing.result(), gate)


# Writes the predictions parts: a thread, so the disk's time overlaps the sums (Parquet
# encoding, hashing and the write itself release the GIL).
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="regflow-predictions")


def _scored(
    columns: list[np.ndarray],
    y: np.ndarray,
    rows: np.ndarray | None,
    cols: Columns,
    model: Linear,
) -> MetricSums:
    """Another model's metric sums on these rows (None: all; it reads its columns by name)."""
    by_name = dict(zip(cols.features, columns, strict=True))

    def take(values: np.ndarray) -> np.ndarray:
        return values if rows is None else values[rows]

    return MetricSums.of_arrays(
        take(y), predict_linear([take(by_name[n]) for n in model.names], model)
    )


def score_partition(item: Item, cols: Columns, model: Linear) -> MetricSums:
    """A champion's metric sums on this file's evaluation rows (held out, or all)."""
    part, dropped = item
    columns, y, kept = _kept_arrays(_read_columns(part, cols), dropped)
    held = _split_masks(part, kept, cols)
    return _scored(columns, y, held if cols.holdout > 0 else None, cols, model)
