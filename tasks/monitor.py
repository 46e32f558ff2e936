"""Monitor: when scored data holds the target, judge the version and raise the alarm.

The verdict goes three ways: the table artifact `<model>-monitoring` (one key per model, so
the Artifacts page keeps its history), a record in the registry against the version
(`regflow models monitor NAME`), and, when a check fails, the event `regflow.model.degraded`
that an automation can answer with a retraining run (deployments/prefect.yaml).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_table_artifact

from regflow.io.markdown import md_text
from regflow.registry import Predictor, Registry, RegistryError
from regflow.schemas.columns import PREDICTION_COLUMN
from regflow.stats.monitoring import MonitoringReport, labelled_target, monitor
from regflow.tasks.outcomes import pipeline_task
from regflow.tasks.score import artifact_key


def judge(
    predictor: Predictor, scored: pd.DataFrame, max_mse_ratio: float, max_psi: float
) -> MonitoringReport | None:
    """The verdict on `predictor`'s version, or None when the data has no target column."""
    if predictor.target not in scored.columns:
        return None
    return monitor(
        predictor.card,
        predictor.encode(scored),  # the columns the card summarised: indicators included
        labelled_target(scored, predictor.target),
        scored[PREDICTION_COLUMN].to_numpy(dtype=np.float64),
        model_ref=predictor.ref,
        max_mse_ratio=max_mse_ratio,
        max_psi=max_psi,
    )


def _number(value: float | None) -> str:
    return "not finite" if value is None else f"{value:.6g}"


def monitoring_table(report: MonitoringReport) -> list[dict[str, Any]]:
    """One row per check, then the live metrics: what the artifact shows."""
    ks = {d.feature: d for d in report.drift}
    rows: list[dict[str, Any]] = []
    for check in report.checks:
        if check.name.startswith("psi:"):
            d = ks[check.name.removeprefix("psi:")]
            detail = f"KS {d.ks:.3g}; mean {d.live_mean:.6g} live, {d.train_mean:.6g} training"
        else:
            live = report.live.mse if report.live else None
            detail = (
                f"live MSE {_number(live)} vs {report.reference_split} MSE "
                f"{report.reference_mse:.6g}"
            )
        rows.append(
            {
                "check": check.name,
                "value": check.value,
                "threshold": check.threshold,
                "result": "FAILED" if check.failed else "ok",
                "detail": detail,
            }
        )
    if report.live is not None:
        for metric in ("rmse", "mae", "r2"):
            value = getattr(report.live, metric)
            rows.append({"check": f"live {metric}", "value": value, "threshold": None})
    return rows


def publish_monitoring(model_name: str, report: MonitoringReport, data: str) -> None:
    create_table_artifact(
        table=monitoring_table(report),
        key=artifact_key(model_name, "monitoring"),
        description=(
            f"{md_text(report.model_ref)} on {md_text(data)}: **{report.status}** "
            f"({report.rows_labelled} labelled of {report.rows_scored} rows)"
            + (f"; failed: {md_text(', '.join(report.failed))}" if report.failed else "")
        ),
    )


def record_monitoring(
    registry: str | None,
    report: MonitoringReport,
    run_id: str | None,
    data_sha256: str,
    store: str | None = None,
) -> bool:
    """Append the verdict to the registry; False (with a warning) where it cannot be written,
    e.g. a read-only registry: the scores and the event still stand."""
    name, _, version = report.model_ref.rpartition(":")
    try:
        with Registry.open(registry, store=store, create=False) as reg:
            reg.record_monitoring(
                name,
                int(version),
                status=report.status,
                rows=report.rows_labelled,
                failed=report.failed,
                report=report.model_dump(mode="json"),
                run_id=run_id,
                data_sha256=data_sha256,
            )
    except RegistryError as err:
        get_run_logger().warning("monitoring of %s not recorded in the registry: %s", name, err)
        return False
    return True


monitor_task = pipeline_task(judge, name="monitor")
monitoring_report_task = pipeline_task(publish_monitoring, name="monitoring-report")
record_monitoring_task = pipeline_task(record_monitoring, name="record-monitoring", retries=2)
