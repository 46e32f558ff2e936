"""The correlation gate on the dask engine: decided from the merged moments, with residual
diagnostics (leverage, Cook's distance, the RESET curvature term) from a pass over the files.

A pass over 100M rows costs seconds, so the gate borrows one where it can: when the moments
alone are trustworthy (`fit_summary.provisional_summary`: not a near-perfect fit, not a badly
conditioned design) and the gate passes on them, its diagnostics come with the evaluation
pass, which reads every file anyway (`complete_gate` then makes the final report, the same
numbers a pass of its own gives). A gate that would stop, and any fit the moments cannot
vouch for, gets its own pass here: a stop is always decided on the final numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prefect import get_run_logger

from regflow.partitioned import merge
from regflow.partitioned.work import Columns, Scanned, gate_residuals, qr_residuals
from regflow.runtime.engine import Cluster, map_partitions
from regflow.schemas.results import GateReport
from regflow.stats.correlation import spearman_sampled
from regflow.stats.fit_summary import (
    FitSummary,
    provisional_summary,
    summary_from_qr,
    summary_from_sweeps,
)
from regflow.stats.moment_sweeps import Moments, Residuals, Solution, solve_moments
from regflow.tasks.gate import SPEARMAN_MAX_ROWS, SPEARMAN_SEED, gate_from_partitions, rows_needed
from regflow.tasks.outcomes import pipeline_task
from regflow.tasks.partitioned import Dataset, Items, partition_items, pass_counter, qr_fit


@dataclass(frozen=True)
class GateInputs:
    """What the gate's report is made from, besides the fit summary."""

    moments: Moments
    spearman: np.ndarray
    spearman_rows: int
    cols: Columns
    min_abs_r: float
    alpha: float
    fit_intercept: bool

    def report_of(self, summary: FitSummary | None) -> GateReport:
        return gate_from_partitions(
            self.moments, summary, self.spearman, self.spearman_rows, self.cols.features,
            self.cols.target, min_abs_r=self.min_abs_r, alpha=self.alpha,
            fit_intercept=self.fit_intercept,
        )  # fmt: skip


@dataclass(frozen=True)
class GateResult:
    """The gate's report (from the moments while `pending` is set) and what completes it."""

    report: GateReport
    pending: Solution | None  # the fit whose diagnostics the evaluation pass takes
    inputs: GateInputs

    @property
    def moments(self) -> Moments:
        return self.inputs.moments


def _own_pass(
    cluster: Cluster, items: Items, inputs: GateInputs, fit: Solution | None
) -> FitSummary | None:
    """The gate's residual pass: on the moments' fit where that holds, else the QR route."""
    cols = inputs.cols
    if fit is not None:
        sums = map_partitions(
            cluster, gate_residuals, items, cols, fit,
            label="gate", on_done=pass_counter("gate", len(items)),
        )  # fmt: skip
        merged = merge.merge_all(sums)
        summary = None if merged is None else summary_from_sweeps(fit, merged)
        if summary is not None:
            return summary
    qr = qr_fit(cluster, items, cols, inputs.moments, inputs.fit_intercept, "all")
    qr_sums = map_partitions(
        cluster, qr_residuals, items, cols, qr,
        label="gate", on_done=pass_counter("gate", len(items)),
    )  # fmt: skip
    total = merge.merge_all(qr_sums)
    assert total is not None  # the table check guarantees rows
    return summary_from_qr(qr, total)


def _log(report: GateReport, note: str = "") -> None:
    get_run_logger().info(
        "gate %s%s: %s (%d warning%s)", report.decision, note, report.reason,
        len(report.warnings), "" if len(report.warnings) == 1 else "s",
    )  # fmt: skip


def partitioned_gate(
    cluster: Cluster,
    data: Dataset,
    cols: Columns,
    scans: list[Scanned],
    *,
    min_abs_r: float,
    alpha: float,
    fit_intercept: bool,
) -> GateResult:
    """The gate from merged moments, the same decisions and numbers as the local gate's."""
    moments = merge.check_table(data.source, merge.merge_all(s.all for s in scans), cols)
    sample = merge.merged_sample(scans)
    x = [sample[name].to_numpy(dtype=np.float64) for name in cols.features]
    rhos, _ = spearman_sampled(
        x, sample[cols.target].to_numpy(dtype=np.float64), SPEARMAN_MAX_ROWS, SPEARMAN_SEED
    )
    inputs = GateInputs(moments, rhos, len(sample), cols, min_abs_r, alpha, fit_intercept)
    if moments.count < rows_needed(len(cols.features), fit_intercept):
        report = inputs.report_of(None)  # the gate stops on the row count alone
        _log(report)
        return GateResult(report, None, inputs)
    fit = solve_moments(moments, fit_intercept=fit_intercept)
    provisional = None if fit is None else provisional_summary(fit)
    if provisional is not None:
        report = inputs.report_of(provisional)
        if report.passed:
            _log(report, " on the moments (leverage, Cook's distance and curvature follow "
                         "from the evaluation pass)")  # fmt: skip
            return GateResult(report, fit, inputs)
    report = inputs.report_of(_own_pass(cluster, partition_items(data, scans), inputs, fit))
    _log(report)
    return GateResult(report, None, inputs)


def complete_gate(
    cluster: Cluster,
    data: Dataset,
    scans: list[Scanned],
    gate: GateResult,
    sums: Residuals | None,
) -> GateReport:
    """The final report: the moments' decision with the evaluation pass's diagnostics."""
    if gate.pending is None:
        return gate.report
    summary = None if sums is None else summary_from_sweeps(gate.pending, sums)
    if summary is None:  # provisional_summary vouched for the moments; the QR route decides
        summary = _own_pass(cluster, partition_items(data, scans), gate.inputs, None)
    report = gate.inputs.report_of(summary)
    _log(report, " (diagnostics from the evaluation pass)")
    return report


partitioned_gate_task = pipeline_task(partitioned_gate, name="correlation-gate")
gate_diagnostics_task = pipeline_task(complete_gate, name="gate-diagnostics")
