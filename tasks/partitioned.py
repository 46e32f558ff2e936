"""The dask engine's steps: each one pass over the files on the cluster, merged here.

describe (sizes, schemas; CSV's SHA-256; Parquet's where the early cluster hashed the files
while the CLI loaded) -> scan (validate, moments, sample; the other Parquet files' SHA-256,
hashed as the file is read) -> gate (tasks/partitioned_gate.py: decided from the
moments; its residual diagnostics come with the evaluation pass where the moments are
trustworthy, else from a pass of its own) -> train (from the merged moments, O(d^2) per
epoch) -> evaluate (predictions written by the workers, metric sums merged). A progress
artifact per pass counts the partitions done; the terminal shows the same count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from uuid import UUID

import numpy as np
import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from regflow.errors import InvalidInputError, Problem
from regflow.io.datasets import (
    UNHASHED,
    DatasetFile,
    check_same_schema,
    dataset_sha256,
    expand_dataset,
)
from regflow.io.hashing import FileDigest
from regflow.io.predictions import predictions_frame
from regflow.io.sources import detect_format, is_remote
from regflow.partitioned import merge
from regflow.partitioned.work import (
    Columns,
    Evaluated,
    Item,
    Linear,
    Part,
    Scanned,
    describe_or_problem,
    evaluate_partition,
    predict_linear,
    r_factor,
    scan_partition,
    score_partition,
)
from regflow.runtime import progress as run_progress
from regflow.runtime.cores import usable_cores
from regflow.runtime.early_cluster import hashed_ahead
from regflow.runtime.engine import Cluster, map_partitions
from regflow.schemas.results import Evaluation, Split, TrainResult
from regflow.stats import splitting
from regflow.stats.metrics import MetricSums
from regflow.stats.moment_sweeps import Moments, Residuals, Solution, solve_moments
from regflow.stats.partition_qr import QRSolution, merge_r_factors, qr_solution
from regflow.tasks.evaluate import EXACT_FIT, SAMPLE_ROWS, TRUSTED_CONDITION, check_optimality
from regflow.tasks.outcomes import pipeline_task
from regflow.tasks.register import promotion_scores
from regflow.tasks.train import TrainConfig, describe_device, select_device
from regflow.tasks.train_moments import fit_linear_from_moments

ARTIFACT_EVERY_S = 1.0  # the progress artifact's least interval between moves


@dataclass(frozen=True)
class Dataset:
    """The files of a partitioned dataset, where each one's rows start, and its fingerprint
    (UNHASHED until every file's SHA-256 is known: see with_hashes)."""

    source: str
    files: list[DatasetFile]
    parts: list[Part]
    sha256: str
    format: str

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)


def pass_counter(label: str, total: int) -> Callable[[int, int], None]:
    """Partitions done of this pass, in a progress artifact and on the terminal. The artifact
    moves at most once a second, and at the end: each move is an API call, which costs this
    process and the Prefect server CPU the workers on the same machine would use."""
    artifact = UUID(
        str(
            create_progress_artifact(
                progress=0.0, description=f"{label}: partitions done of {total}"
            )
        )
    )
    run_progress.start(label, f"{label} ({total} partitions)", total)
    shown = [time.monotonic()]

    def done(count: int, of: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= ARTIFACT_EVERY_S or count == of:
            update_progress_artifact(artifact_id=artifact, progress=100.0 * count / of)
            shown[0] = now
        run_progress.update(label, count, f"{count}/{of} partitions")
        if count == of:
            run_progress.finish(label, f"{of} partitions")

    return done


def describe_dataset(cluster: Cluster, data: str | list[str], source: str) -> Dataset:
    """List the files, describe each, and check they agree. Parquet files are described
    from their footers (here, when they are local and the cluster is this machine's own;
    else on the cluster, as CSV and remote files are), with the SHA-256 the early cluster
    took of them where it still holds (hashed_ahead); the validate pass hashes the others
    (with_hashes)."""
    paths = expand_dataset(data)
    counter = pass_counter("describe", len(paths))
    if cluster.started_here and all(_local_parquet(p) for p in paths):
        found = _footers_here(paths, counter)
        found = _with_digests(found, hashed_ahead(cluster.client, paths))
    else:
        found = map_partitions(
            cluster, describe_or_problem, paths, label="describe", on_done=counter
        )
    problems = [p for item in found if isinstance(item, list) for p in item]
    if problems:
        raise InvalidInputError(source, problems)
    files = [item for item in found if isinstance(item, DatasetFile)]
    check_same_schema(files)
    parts, first = [], 0
    for i, described in enumerate(files):
        hashed = described.sha256 != UNHASHED
        parts.append(Part(i, described.path, first, described.rows, needs_sha256=not hashed))
        first += described.rows
    fmt = "parquet" if files[0].path.lower().endswith(".parquet") else "csv"
    get_run_logger().info("dataset: %d files, %d rows", len(files), first)
    return _fingerprinted(Dataset(source, files, parts, UNHASHED, fmt))


def _local_parquet(path: str) -> bool:
    return not is_remote(path) and detect_format(path) == "parquet"


def _footers_here(
    paths: list[str], on_done: Callable[[int, int], None]
) -> list[DatasetFile | list[Problem]]:
    """Local Parquet files on a cluster of this machine: their footers are read here, on a
    thread per core (a millisecond each; a task per file on the cluster took a second at
    100 files)."""
    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        found = []
        for done, item in enumerate(pool.map(describe_or_problem, paths), start=1):
            found.append(item)
            on_done(done, len(paths))
    return found


def _with_digests(
    found: list[DatasetFile | list[Problem]], digests: dict[str, FileDigest]
) -> list[DatasetFile | list[Problem]]:
    """Footers with the SHA-256 the early cluster took of their (unchanged) files."""
    return [
        replace(item, sha256=digests[item.path].sha256)
        if isinstance(item, DatasetFile) and item.path in digests
        else item
        for item in found
    ]


def _fingerprinted(data: Dataset) -> Dataset:
    if any(f.sha256 == UNHASHED for f in data.files):
        return data
    get_run_logger().info("dataset SHA-256 %s", dataset_sha256(data.files)[:12])
    return replace(data, sha256=dataset_sha256(data.files))


def with_hashes(data: Dataset, scans: list[Scanned]) -> Dataset:
    """The dataset with the SHA-256 the validate pass took of the files it hashed, and its
    fingerprint (still UNHASHED if a file could not be read: the scan names the problem)."""
    by_index = {s.index: s.file for s in scans if s.file is not None}
    files = [by_index.get(i, f) if f.sha256 == UNHASHED else f for i, f in enumerate(data.files)]
    return _fingerprinted(replace(data, files=files))


def scan(cluster: Cluster, data: Dataset, cols: Columns) -> list[Scanned]:
    """Pass 1 on every file: validation, moments per split, the sample."""
    return map_partitions(
        cluster, scan_partition, data.parts, cols, label="validate",
        on_done=pass_counter("validate", len(data.parts)),
    )  # fmt: skip


def sample_fraction(rows: int) -> float:
    """The share of rows to sample: every row up to SAMPLE_ROWS, as the local gate does."""
    return splitting.sample_fraction(rows, SAMPLE_ROWS)


Items = list[Item]


def partition_items(data: Dataset, scans: list[Scanned]) -> Items:
    return list(zip(data.parts, [s.dropped for s in scans], strict=True))


def qr_fit(
    cluster: Cluster, items: Items, cols: Columns, moments: Moments, fit_intercept: bool, rows: str
) -> QRSolution:
    """The tall-skinny QR route: every file's R factor, merged pairwise on the client."""
    factors = map_partitions(
        cluster, r_factor, items, cols, moments, fit_intercept, rows,
        label="qr", on_done=pass_counter("least squares (QR)", len(items)),
    )  # fmt: skip
    return qr_solution(merge_r_factors(factors), moments, fit_intercept=fit_intercept)


def reference_fit(
    cluster: Cluster,
    data: Dataset,
    cols: Columns,
    scans: list[Scanned],
    fit_moments: Moments,
    fit_intercept: bool,
) -> tuple[Linear, float]:
    """The float64 least-squares optimum on the fit rows and its condition number."""
    fit = solve_moments(fit_moments, fit_intercept=fit_intercept)
    if fit is not None:
        return Linear(cols.features, fit.coef.tolist(), fit.intercept), fit.condition_number
    rows = "train" if cols.holdout > 0 else "all"
    qr = qr_fit(cluster, partition_items(data, scans), cols, fit_moments, fit_intercept, rows)
    return Linear(cols.features, qr.coef.tolist(), qr.intercept), qr.scaled.condition_number


def train_from_moments(
    moments: Moments, features: list[str], config: TrainConfig, device_name: str, name: str
) -> TrainResult:
    """Train the nn.Linear on the merged moments of the training rows (no pass over data)."""
    logger = get_run_logger()
    device = select_device(device_name)
    done = pass_counter("train", config.epochs)
    logger.info(
        "training on %s (%s) from the moments of %d rows: %s, lr %g, up to %d epochs",
        device, describe_device(device), moments.count, config.optimizer, config.lr,
        config.epochs,
    )  # fmt: skip

    def report(epoch: int, epochs: int, loss: float) -> None:
        logger.info("epoch %d/%d loss %.6g", epoch, epochs, loss)
        done(epoch, epochs)

    result = fit_linear_from_moments(
        moments.count, moments.mean, moments.cross, features, config, device, progress=report
    )
    logger.info("%s after %d epochs; final loss %.6g", result.stop_reason, result.epochs_run,
                result.losses[-1])  # fmt: skip
    return result


def evaluate(
    cluster: Cluster,
    data: Dataset,
    cols: Columns,
    scans: list[Scanned],
    trained: TrainResult,
    fit_moments: Moments,
    champion: Linear | None,
    predictions_dir: str,
    *,
    holdout_note: str,
    max_optimality_gap: float | None,
    aims_at_optimum: bool,
    gate_fit: Solution | None = None,
) -> tuple[Evaluation, list[Evaluated]]:
    """The last pass: predictions written by the workers; metrics and the optimum from merged
    sums; and, given the gate's fit, its residual diagnostics (Evaluated.gate)."""
    reference, condition = reference_fit(
        cluster, data, cols, scans, fit_moments, trained.fit_intercept
    )
    model = _trained_linear(cols, trained)
    # Fit on every row, the optimum is the gate's own fit: its sweep (centred, as the local
    # engine takes the optimum's SSE) already has the residuals, so no second prediction.
    gate_has_it = cols.holdout <= 0 and gate_fit is not None and _same_fit(reference, gate_fit)
    parts = map_partitions(
        cluster, evaluate_partition, partition_items(data, scans), cols, model,
        None if gate_has_it else reference, champion, predictions_dir, gate_fit,
        label="evaluate", on_done=pass_counter("evaluate", len(data.parts)),
    )  # fmt: skip
    metrics = merge.merged_metrics(parts)
    fit_split: Split = "train" if cols.holdout > 0 else "all"
    ref_sums: Residuals | MetricSums | None = None
    if gate_has_it:
        ref_sums = merge.merge_all(p.gate for p in parts)
    else:
        ref_sums = merge.merge_all(p.reference for p in parts)
    assert ref_sums is not None  # the fit rows are never empty
    n_fit = fit_moments.count
    ols_mse = ref_sums.sse / n_fit
    model_mse = metrics[fit_split].mse
    mean_y = float(fit_moments.mean[-1])
    scale = (float(fit_moments.cross[-1, -1]) / n_fit + mean_y * mean_y) or 1.0  # mean(y^2)
    evaluation = Evaluation(
        metrics=metrics,
        fit_split=fit_split,
        holdout_note=holdout_note,
        ols_coefficients=dict(zip(cols.features, reference.coef, strict=True)),
        ols_intercept=reference.intercept,
        ols_mse=ols_mse,
        model_mse=model_mse,
        optimality_gap=(model_mse - ols_mse) / ols_mse if ols_mse > EXACT_FIT * scale else None,
        optimality_gap_abs=model_mse - ols_mse,
        reference_condition_number=condition,
        reference_trusted=condition < TRUSTED_CONDITION,
    )
    check_optimality(evaluation, max_optimality_gap, aims_at_optimum)
    return evaluation, parts


def _same_fit(reference: Linear, fit: Solution) -> bool:
    return reference.coef == fit.coef.tolist() and reference.intercept == fit.intercept


def score_champion(
    cluster: Cluster, data: Dataset, cols: Columns, scans: list[Scanned], champion: Linear
) -> dict[str, float] | None:
    """A champion's metrics on the evaluation rows: one more pass (the register step needs it
    only when the champion moved after the evaluation pass scored the one before)."""
    parts = map_partitions(
        cluster, score_partition, partition_items(data, scans), cols, champion,
        label="champion", on_done=pass_counter("score champion", len(data.parts)),
    )  # fmt: skip
    total = merge.merge_all(parts)
    return None if total is None else promotion_scores(total.to_split_metrics("all"))


def _trained_linear(cols: Columns, trained: TrainResult) -> Linear:
    return Linear(cols.features, [trained.coefficients[f] for f in cols.features],
                  trained.intercept)  # fmt: skip


def sample_predictions(sample: pd.DataFrame, cols: Columns, trained: TrainResult) -> pd.DataFrame:
    """The sampled rows' true and predicted values (plots and the preview), split labelled."""
    model = _trained_linear(cols, trained)
    columns = [sample[name].to_numpy(dtype=np.float64) for name in cols.features]
    held = sample["__holdout"].to_numpy(dtype=bool) if cols.holdout > 0 else None
    y = sample[cols.target].to_numpy(dtype=np.float64)
    return predictions_frame(y, predict_linear(columns, model), held)


describe_task = pipeline_task(describe_dataset, name="describe", retries=2)
scan_task = pipeline_task(scan, name="validate", retries=2)
train_moments_task = pipeline_task(train_from_moments, name="train")
partitioned_evaluate_task = pipeline_task(evaluate, name="evaluate", retries=2)
