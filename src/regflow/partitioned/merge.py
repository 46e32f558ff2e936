"""The client's side of the dask engine's passes: merge what the workers returned.

Moments merge pairwise (Chan et al.), residual and metric sums add, samples concatenate in
global row order; table checks that no single file can decide (enough rows, a constant
column) are judged here on the merged sums, with the checks' usual names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from regflow.errors import InvalidInputError, Problem
from regflow.partitioned.work import Columns, Evaluated, Scanned
from regflow.schemas.dataset import CHECK_MESSAGES, MIN_ROWS, too_many_invalid
from regflow.schemas.results import Split, SplitMetrics
from regflow.stats.metrics import MetricSums
from regflow.stats.moment_sweeps import Moments, Residuals
from regflow.stats.partition_qr import QRResiduals

_M = TypeVar("_M", Moments, Residuals, MetricSums, QRResiduals)
MAX_PROBLEMS = 200  # one report, however many files fail: the first ones, then a count


def merge_all(parts: Iterable[_M | None]) -> _M | None:
    """Merge in the given (file) order into a new object; None for nothing, empty parts
    skipped. Workers' results are never changed in place (a retried pass may reuse them)."""
    total: _M | None = None
    for part in parts:
        if part is None or (isinstance(part, Moments | MetricSums) and _count(part) == 0):
            continue
        if total is None:
            total = part
        elif isinstance(total, MetricSums):
            total = total.merge(part)
        else:
            total = total.merged(part)
    return total


def _count(part: Moments | MetricSums) -> int:
    return int(part.count if isinstance(part, Moments) else part.n)


def check_scans(source: str, scans: Sequence[Scanned], max_invalid_fraction: float) -> None:
    """Every problem of every file in one report; then quarantine's share over all rows."""
    problems = [p for scan in scans for p in scan.problems]
    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(
                Problem(
                    check="more_problems",
                    message=f"... and {len(problems) - MAX_PROBLEMS} more problems",
                    file=source,
                )
            )
        raise InvalidInputError(source, shown)
    read = sum(scan.rows_read for scan in scans)
    rejected = sum(scan.rejected for scan in scans)
    if read and rejected / read > max_invalid_fraction:
        raise InvalidInputError(
            source, [too_many_invalid(rejected, read, max_invalid_fraction, source)]
        )


def check_table(source: str, moments: Moments | None, cols: Columns) -> Moments:
    """The table checks on the whole dataset: at least MIN_ROWS rows, no constant column."""
    n = 0 if moments is None else moments.count
    if moments is None or n < MIN_ROWS:
        raise InvalidInputError.single(
            source,
            f"at_least_{MIN_ROWS}_rows",
            f"{CHECK_MESSAGES[f'at_least_{MIN_ROWS}_rows']} (found {n} in all files)",
        )
    names = [*cols.features, cols.target]
    constant = [name for j, name in enumerate(names) if moments.lo[j] == moments.hi[j]]
    if constant:
        raise InvalidInputError(
            source,
            [
                Problem(
                    check="not_constant",
                    message=CHECK_MESSAGES["not_constant"] + " (in every file)",
                    file=source,
                    column=name,
                )
                for name in constant
            ],
        )
    return moments


def merged_sample(scans: Sequence[Scanned]) -> pd.DataFrame:
    """The sampled rows of every file, in global row order."""
    frames = [scan.sample for scan in scans if scan.sample is not None and len(scan.sample)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).sort_values("__position", ignore_index=True)


def merged_metrics(parts: Sequence[Evaluated]) -> dict[Split, SplitMetrics]:
    """Metrics per split (train, holdout, all: the local run's order) from every file's sums."""
    splits: list[Split] = ["train", "holdout", "all"]
    merged: dict[Split, SplitMetrics] = {}
    for split in splits:
        total = merge_all(part.metrics.get(split) for part in parts)
        if split in parts[0].metrics and total is not None:
            merged[split] = total.to_split_metrics(split)
        elif split in parts[0].metrics:
            merged[split] = MetricSums.of_arrays(np.zeros(0), np.zeros(0)).to_split_metrics(split)
    return merged
