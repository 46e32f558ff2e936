"""The `train` flow on the dask engine: the same steps, each a pass over the files.

Called by flows/training.py when the engine resolves to dask. Nothing n-long is held here:
the workers return moments, sums and a bounded sample; predictions and quarantined rows are
written by the workers, as Parquet parts, straight into the run's staging folder.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, runtime
from prefect.variables import Variable

from regflow.errors import GateStoppedError, InvalidInputError
from regflow.flows.finish import finish_registered
from regflow.io.datasets import dataset_label, read_partition
from regflow.io.hashing import FileDigest
from regflow.partitioned import merge
from regflow.partitioned.work import Columns, Evaluated, Linear, Scanned, file_levels
from regflow.registry import IntegrityError, Predictor, Registry
from regflow.registry.errors import NotFoundError
from regflow.runtime.engine import Cluster, dask_cluster, map_partitions
from regflow.schemas.categorical import check_levels, indicator_names
from regflow.schemas.frames import ValidatedData
from regflow.schemas.params import TrainParams
from regflow.schemas.results import GateReport, QuarantineSummary, TrainOutcome, UnchangedOutcome
from regflow.stats.moment_sweeps import Moments
from regflow.tasks.evaluate import holdout_outcome, no_holdout_reason
from regflow.tasks.events import emit_gate_stopped
from regflow.tasks.outcomes import StepFailed, unwrap
from regflow.tasks.partitioned import (
    Dataset,
    describe_task,
    partitioned_evaluate_task,
    pass_counter,
    sample_fraction,
    sample_predictions,
    scan_task,
    score_champion,
    train_moments_task,
    with_hashes,
)
from regflow.tasks.partitioned_gate import gate_diagnostics_task, partitioned_gate_task
from regflow.tasks.publish import (
    PREDICTIONS_DIR,
    QUARANTINE_DIR,
    build_card,
    discard_run,
    library_versions,
    open_staging,
    publish_task,
    render_plots,
)
from regflow.tasks.register import CHAMPION, promotion_scores, register_scored_task
from regflow.tasks.report import gate_stop_report_task
from regflow.tasks.train import aims_at_optimum, choose_dtype, resolve_config, select_device
from regflow.tasks.unchanged import run_fingerprint, unchanged_version
from regflow.tasks.validate import resolve_columns

ADDRESS_VARIABLE = "regflow_dask_address"  # a deployment's cluster, set once per workspace
Unchanged = Callable[..., UnchangedOutcome]


def cluster_address(given: str | None) -> str | None:
    """The scheduler to use: the parameter, else the Prefect Variable, else None (a
    LocalCluster for the run)."""
    if given:
        return given
    value = Variable.get(ADDRESS_VARIABLE, default=None)
    return str(value) if value else None


def _features(
    cluster: Cluster, data: Dataset, params: TrainParams
) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """Features (the numeric ones, then the indicators of --categorical columns), ignored
    columns and the categorical levels, as a local run picks them: the numeric features
    from the first file, the levels from every file's values."""
    first = read_partition(data.parts[0].path)
    spec = params.data
    numeric, ignored = resolve_columns(first, spec.target, spec.features, data.source,
                                       spec.categorical)  # fmt: skip
    if not spec.categorical:
        return numeric, ignored, {}
    found = map_partitions(
        cluster, file_levels, [part.path for part in data.parts], spec.categorical,
        label="levels", on_done=pass_counter("categorical levels", len(data.parts)),
    )  # fmt: skip
    problems = [p for item in found if isinstance(item, list) for p in item]
    if problems:
        raise InvalidInputError(data.source, problems)
    union = {c: sorted({lv for item in found if isinstance(item, dict) for lv in item[c]})
             for c in spec.categorical}  # fmt: skip
    columns = [str(c) for c in first.columns]
    levels = check_levels(
        union, spec.max_levels, data.source, taken=columns, has_rows=data.rows > 0
    )
    indicators = [n for c, known in levels.items() for n in indicator_names(c, known)]
    return [*numeric, *indicators], ignored, levels


def _champion(params: TrainParams, name: str) -> Predictor | None:
    """The current champion, verified, its coefficients to be scored by the evaluation pass."""
    try:
        with Registry.open(params.registry.registry, store=params.registry.registry_store,
                           create=False) as reg:  # fmt: skip
            current = reg.get_alias(name, CHAMPION)
            if current is None:
                return None
            return reg.load(f"{name}:{current}")
    except (NotFoundError, IntegrityError):  # no registry, or a champion that fails to verify
        return None  # the register step decides again and says why


def _linear(champion: Predictor, features: list[str]) -> Linear | None:
    if not set(champion.encoded_names) <= set(features):
        return None
    return Linear(
        list(champion.encoded_names),
        champion.weights.coef.tolist(),
        float(champion.weights.intercept),
    )


def _holdout(params: TrainParams, moments: Moments, train: Moments | None) -> tuple[bool, str]:
    """Whether there is a holdout, and the note: the local rules, on the merged counts."""
    opts = params.training
    reason = no_holdout_reason(moments.count, opts.holdout)
    if reason is not None:
        return False, reason
    held = moments.count - (moments.count if train is None else train.count)
    return holdout_outcome(moments.count, held, opts.holdout, opts.seed)


def train_on_cluster(
    params: TrainParams, name: str, run_id: str | None, unchanged: Unchanged
) -> TrainOutcome | UnchangedOutcome:
    """Every step of a training run, partition-wise on a Dask cluster."""
    logger = get_run_logger()
    opts, out = params.training, params.registry
    source = params.data.name or dataset_label(params.data.path)
    with dask_cluster(cluster_address(opts.dask_address), logger) as cluster:
        data = unwrap(describe_task(cluster, params.data.path, source, return_state=True))
        features, ignored, levels = _features(cluster, data, params)
        # Folders this run creates: an unchanged or failed run removes them again (if empty).
        created = [f for f in (Path(out.out) / name, Path(out.out)) if not f.exists()]
        staging, final = open_staging(out.out, name, run_id)
        try:
            cols = _columns(params, data, features, staging, levels)
            # Files hashed ahead (or CSV, hashed by describe): the unchanged check comes
            # before the validate pass; Parquet files it hashes as it reads them, after it.
            # Either way before anything is judged, trained or written.
            fingerprint, same = _same_version(params, name, data, features)
            if same is None:
                scans = unwrap(scan_task(cluster, data, cols, return_state=True))
                if not data.sha256:
                    data = with_hashes(data, scans)
                    fingerprint, same = _same_version(params, name, data, features)
            if same is not None:
                _remove(staging, created)  # an unchanged run leaves the output folder as it was
                return unchanged(name, *same, data.sha256, fingerprint, run_id)
            return _train(params, name, run_id, cluster, data, (cols, scans), features,
                          ignored, fingerprint, (staging, final))  # fmt: skip
        except BaseException:
            _remove(staging, created)  # a failed run leaves nothing behind
            raise


def _same_version(
    params: TrainParams, name: str, data: Dataset, features: list[str]
) -> tuple[str, tuple[Any, ...] | None]:
    """The run's fingerprint, and the version that already has it (None: none, forced, or
    the data not fingerprinted yet, or never: a file failed to read)."""
    out = params.registry
    fingerprint = run_fingerprint(
        data.sha256, params.model_settings(features), library_versions()["regflow"]
    )
    if out.force or not data.sha256:
        return fingerprint, None
    same = unchanged_version(out.registry, name, data.sha256, fingerprint, out.registry_store)
    return fingerprint, same


def _remove(staging: Path, created: list[Path]) -> None:
    """The staging folder, then the folders this run created, innermost first, if empty."""
    shutil.rmtree(staging, ignore_errors=True)
    for folder in created:
        with contextlib.suppress(OSError):  # not empty: another run's, or this one's result
            folder.rmdir()


def _columns(
    params: TrainParams,
    data: Dataset,
    features: list[str],
    staging: Path,
    levels: dict[str, list[str]],
) -> Columns:
    """What every pass needs to know about the columns, the split and the outputs."""
    opts = params.training
    quarantining = params.data.on_invalid == "quarantine"
    return Columns(
        features=features,
        target=params.data.target,
        quarantine=quarantining,
        holdout=opts.holdout,
        seed=opts.seed,
        sample_fraction=sample_fraction(data.rows),
        quarantine_dir=str(staging / QUARANTINE_DIR) if quarantining else None,
        device=select_device(opts.device).type,
        levels=levels,
    )


def _train(
    params: TrainParams,
    name: str,
    run_id: str | None,
    cluster: Cluster,
    data: Dataset,
    scanned: tuple[Columns, list[Scanned]],
    features: list[str],
    ignored: list[str],
    fingerprint: str,
    staged_paths: tuple[Path, Path],
) -> TrainOutcome:
    logger = get_run_logger()
    opts, out, target = params.training, params.registry, params.data.target
    staging = staged_paths[0]
    quarantining = params.data.on_invalid == "quarantine"
    cols, scans = scanned
    source = data.source
    merge.check_scans(source, scans, params.data.max_invalid_fraction)
    gate = unwrap(
        partitioned_gate_task(
            cluster, data, cols, scans, **params.gate_options(), return_state=True
        )
    )
    report, moments = gate.report, gate.moments
    _stop_unless_passed(name, report)
    train_moments = merge.merge_all(s.train for s in scans)
    has_holdout, note = _holdout(params, moments, train_moments)
    if not has_holdout or train_moments is None:
        cols, train_moments = replace(cols, holdout=0.0), moments
    precision, why = choose_dtype(
        opts.dtype, condition_number=report.condition_number,
        r_squared=report.multiple_r**2,
        device=select_device(opts.device),
    )  # fmt: skip
    logger.info("precision: %s", why)
    config = resolve_config(params.model.preset, **params.training_options(precision))
    trained = unwrap(
        train_moments_task(train_moments, features, config, opts.device, name, return_state=True)
    )
    verified = _champion(params, name)
    champion = None if verified is None else _linear(verified, features)
    sample = merge.merged_sample(scans)
    frame, preview = sample.loc[:, [*features, target]], sample_predictions(sample, cols, trained)
    # The plots need only the sample and the model: drawn on a thread of this process while
    # it waits for the evaluation pass, instead of after it.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="regflow-plots") as drawing:
        plotted = drawing.submit(render_plots, frame, trained, target, preview)
        evaluation, parts = unwrap(
            partitioned_evaluate_task(
                cluster, data, cols, scans, trained, train_moments, champion,
                str(staging / PREDICTIONS_DIR), holdout_note=note,
                max_optimality_gap=opts.max_optimality_gap,
                aims_at_optimum=aims_at_optimum(config), gate_fit=gate.pending,
                return_state=True,
            )
        )  # fmt: skip
    images = plotted.result()
    if gate.pending is not None:  # the gate's diagnostics came with the evaluation pass
        gate_sums = merge.merge_all(p.gate for p in parts)
        report = unwrap(
            gate_diagnostics_task(cluster, data, scans, gate, gate_sums, return_state=True)
        )
        _stop_unless_passed(name, report)  # final numbers a hair's breadth off the moments'
    valid = ValidatedData(
        frame=frame,
        features=features,
        target=target,
        source=source,
        sha256=data.sha256,
        format=data.format,
        ignored_columns=ignored,
        levels=cols.levels,
        rows_read=sum(s.rows_read for s in scans),
        files=tuple(data.files),
    )
    train_rows = np.flatnonzero(~sample["__holdout"].to_numpy(dtype=bool)) if cols.holdout else None
    card = build_card(
        name=name, data=valid, gate=report, trained=trained, evaluation=evaluation,
        parameters=params.flat(), flow_run_id=run_id, flow_run_name=runtime.flow_run.name,
        fingerprint=fingerprint, summary_rows=train_rows,
    )  # fmt: skip
    rejected = sum(s.rejected for s in scans)
    card = card.model_copy(
        update={"data": card.data.model_copy(
            update={"rows": moments.count, "rows_quarantined": rejected}
        )}
    )  # fmt: skip
    staged = unwrap(
        publish_task(out.out, card, trained, None, images, None, staged_paths, return_state=True)
    )
    eval_split = "holdout" if cols.holdout else "all"
    challenger = evaluation.metrics[eval_split]
    champion_sums = merge.merge_all(p.champion for p in parts)
    champion_scores = (
        None if champion_sums is None else promotion_scores(champion_sums.to_split_metrics("all"))
    )
    eval_moments = moments if not cols.holdout else merge.merge_all(s.holdout for s in scans)
    variance = (
        0.0 if eval_moments is None else float(eval_moments.cross[-1, -1]) / eval_moments.count
    )

    def score(current: Predictor) -> dict[str, float] | None:
        scored = _linear(current, features)
        if scored is None:
            return None  # the champion reads columns this data does not have
        if scored == champion:
            return champion_scores  # scored by the evaluation pass
        return score_champion(cluster, data, cols, scans, scored)  # it moved since

    try:
        registered = unwrap(
            register_scored_task(
                out.registry, name, staged.staging_dir, staged.final_dir, card.signature,
                promotion_scores(challenger), score, eval_split, target_variance=variance,
                min_r2=out.min_r2, min_improvement=out.min_improvement, actor=run_id,
                link_files=True, hashed_files=_written(parts, staging), store=out.registry_store,
                verified_champion=verified, return_state=True,
            )
        )  # fmt: skip
    except BaseException:
        discard_run(staged)
        raise
    quarantine = _quarantine(scans, params.data.max_invalid_fraction) if quarantining else None
    return finish_registered(
        registered, staged, run_id=run_id, data=valid, gate=report, trained=trained,
        evaluation=evaluation, predictions=preview, images=images, quarantine=quarantine,
        dtype_reason=why,
    )  # fmt: skip


def _written(parts: list[Evaluated], run_dir: Path) -> dict[str, FileDigest]:
    """The predictions parts' digests, taken by the workers as they wrote them, by path in
    the run folder."""
    return {
        Path(p.predictions_file).relative_to(run_dir).as_posix(): p.predictions_digest
        for p in parts
    }


def _stop_unless_passed(name: str, report: GateReport) -> None:
    if not report.passed:
        gate_stop_report_task(name, report)
        emit_gate_stopped(name, report)
        raise StepFailed(GateStoppedError(report, report.reason))


def _quarantine(scans: list[Any], max_invalid_fraction: float) -> QuarantineSummary:
    read = sum(s.rows_read for s in scans)
    rejected = sum(s.rejected for s in scans)
    by_check: dict[str, int] = {}
    for scan in scans:
        for check, count in scan.by_check.items():
            by_check[check] = by_check.get(check, 0) + count
    return QuarantineSummary(
        rows_read=read,
        rows_rejected=rejected,
        rows_used=read - rejected,
        fraction=rejected / read if read else 0.0,
        max_invalid_fraction=max_invalid_fraction,
        by_check=by_check,
    )
