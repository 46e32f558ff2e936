"""Report: Prefect artifacts with stable keys per model, so the UI keeps each model's history.

The plots travel inside the markdown report as `data:image/png;base64,...` images. Image
artifacts take a URL only, and a regflow run has no web server of its own; data URIs need
none and work offline. Checked in headless Chromium against Prefect 3.9's server: both the
V2 UI (react-markdown, whose URL filter lets `data:image/` through for <img>) and the V1 UI
decode them (scripts/ui_screenshots.py records each image's natural size). The images stand
one per paragraph: a markdown table of images is a neat grid in V2 but overflows in V1.
"""

from __future__ import annotations

import base64
import re

import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from regflow.io.markdown import md_text
from regflow.io.text import name_list
from regflow.schemas.frames import ValidatedData
from regflow.schemas.promotion import PromotionResult
from regflow.schemas.results import Evaluation, GateReport, QuarantineSummary, TrainResult
from regflow.tasks.outcomes import pipeline_task

PREVIEW_ROWS = 10
# Plots in reading order, with captions; names not listed here follow, captioned by name.
PLOT_CAPTIONS = {
    "fit": "Data and fitted line",
    "predicted_vs_true": "Predicted against true",
    "residuals": "Residuals against predicted",
    "loss": "Training loss per epoch",
}


def artifact_key(model: str, kind: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-") or "model"
    return f"{slug}-{kind}"


def metrics_rows(evaluation: Evaluation) -> list[dict[str, object]]:
    return [
        {
            "split": m.split,
            "n": m.n,
            "mse": m.mse,
            "rmse": m.rmse,
            "mae": m.mae,
            "r2": m.r2,
        }
        for m in evaluation.metrics.values()
    ]


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def gate_markdown(gate: GateReport) -> str:
    lines = [
        f"**Gate: {'passed' if gate.passed else 'stopped'}** — {md_text(gate.reason)}",
        "",
        f"{gate.n_rows} rows; {gate.statistic} = {_fmt(gate.value)} (p = {_fmt(gate.p_value)}); "
        f"thresholds: min_abs_r {gate.min_abs_r}, alpha {gate.alpha}; "
        f"condition number {_fmt(gate.condition_number)}",
        "",
        "| feature | Pearson r | p-value | Spearman |",
        "|---|---|---|---|",
        *(
            f"| {md_text(f.feature)} | {_fmt(f.r)} | {_fmt(f.p_value)} | {_fmt(f.spearman)} |"
            for f in gate.features[:50]
        ),
    ]
    if len(gate.features) > 50:
        lines.append(f"| ... {len(gate.features) - 50} more | | | |")
    if gate.warnings:
        # Warning messages name features and the target.
        warnings = [f"- **{w.kind}**: {md_text(w.message)}" for w in gate.warnings]
        lines += ["", "Warnings:", *warnings]
    return "\n".join(lines)


def report_markdown(
    model: str,
    gate: GateReport,
    trained: TrainResult,
    evaluation: Evaluation,
    predictions: pd.DataFrame,
    images: dict[str, bytes],
    extra_sections: list[str] | None = None,
) -> str:
    metric_lines = [
        "| split | n | MSE | RMSE | MAE | R² |",
        "|---|---|---|---|---|---|",
        *(
            f"| {m.split} | {m.n} | {_fmt(m.mse)} | {_fmt(m.rmse)} | {_fmt(m.mae)} | {_fmt(m.r2)} |"
            for m in evaluation.metrics.values()
        ),
    ]
    preview = predictions.head(PREVIEW_ROWS)
    preview_lines = [
        "| row | true | predicted | residual | split |",
        "|---|---|---|---|---|",
        *(
            f"| {i + 1} | {_fmt(true)} | {_fmt(predicted)} | {_fmt(residual)} | {split} |"
            for i, (true, predicted, residual, split) in enumerate(
                zip(
                    preview["true"],
                    preview["predicted"],
                    preview["residual"],
                    preview["split"],
                    strict=True,
                )
            )
        ),
    ]
    coefficients = ", ".join(
        f"{md_text(k)} = {_fmt(v)}" for k, v in list(trained.coefficients.items())[:20]
    )
    sections = [
        f"# {md_text(model)}: training report",
        gate_markdown(gate),
        "## Model",
        f"Coefficients (original units): {coefficients}; intercept = {_fmt(trained.intercept)}.  \n"
        f"{md_text(trained.optimizer)} on {md_text(trained.device)} "
        f"({md_text(trained.device_name)}) in {md_text(trained.dtype)}, "
        f"{trained.epochs_run} epochs ({md_text(trained.stop_reason)}).",
        "## Metrics",
        md_text(evaluation.holdout_note),
        "\n".join(metric_lines),
        f"Least-squares optimum (float64) on the {md_text(evaluation.fit_split)} split: MSE "
        f"{_fmt(evaluation.ols_mse)}; optimality gap "
        f"{'n/a' if evaluation.optimality_gap is None else _fmt(evaluation.optimality_gap)} "
        f"(relative), {_fmt(evaluation.optimality_gap_abs)} (absolute)."
        + (
            ""
            if evaluation.reference_trusted
            else " The reference is ill-conditioned: see warnings."
        ),
        *(extra_sections or []),
        f"## True against predicted (first {len(preview)} rows)",
        "\n".join(preview_lines),
        "## Plots",
        plots_markdown(images),
    ]
    return "\n\n".join(sections)


def data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}"


def plots_markdown(images: dict[str, bytes]) -> str:
    """Each plot as a caption and an embedded PNG, the most telling first."""
    order = [n for n in PLOT_CAPTIONS if n in images] + [
        n for n in images if n not in PLOT_CAPTIONS
    ]
    if not order:
        return "No plots were rendered."
    blocks = []
    for name in order:
        caption = md_text(PLOT_CAPTIONS.get(name, name.replace("_", " ")))
        blocks.append(f"**{caption}**\n\n![{caption}]({data_uri(images[name])})")
    return "\n\n".join(blocks)


def publish_report(
    model: str,
    gate: GateReport,
    trained: TrainResult,
    evaluation: Evaluation,
    predictions: pd.DataFrame,
    images: dict[str, bytes],
    promotion: PromotionResult,
    version_ref: str,
    quarantine: QuarantineSummary | None = None,
) -> None:
    """The `<model>-metrics` table and the `<model>-report` markdown artifacts."""
    get_run_logger().info(
        "registered %s; %s: %s",
        version_ref,
        "promoted to champion" if promotion.promoted else "not promoted",
        promotion.decision.reason,
    )
    extra_sections = [
        promotion_markdown(promotion, version_ref),
        *([quarantine_markdown(quarantine)] if quarantine is not None else []),
    ]
    create_table_artifact(
        key=artifact_key(model, "metrics"),
        table=metrics_rows(evaluation),
        description=f"{md_text(model)}: metrics per split",
    )
    create_markdown_artifact(
        key=artifact_key(model, "report"),
        markdown=report_markdown(
            model, gate, trained, evaluation, predictions, images, extra_sections
        ),
        description=f"{md_text(model)}: gate, metrics, true against predicted, plots",
    )


def publish_gate_stop(model: str, gate: GateReport) -> None:
    create_markdown_artifact(
        key=artifact_key(model, "report"),
        markdown=f"# {md_text(model)}: stopped by the correlation gate\n\n"
        "Nothing was trained or published.\n\n" + gate_markdown(gate),
        description=f"{md_text(model)}: the correlation gate stopped the run",
    )


def publish_unchanged(model: str, ref: str, reason: str) -> None:
    create_markdown_artifact(
        key=artifact_key(model, "report"),
        markdown=f"# {md_text(model)}: unchanged\n\nNothing was trained or registered: "
        f"{md_text(reason)}.\n\nThe model in use stays {md_text(ref)}.",
        description=f"{md_text(model)}: unchanged input, no new version",
    )


def promotion_markdown(result: PromotionResult, ref: str) -> str:
    d = result.decision
    verdict = "Promoted to champion" if result.promoted else "Not promoted"
    before = md_text(result.champion_before or "none")
    after = md_text(result.champion_after or "none")
    lines = [
        "## Registry and promotion",
        f"Registered as {md_text(ref)}. **{verdict}** ({md_text(d.rule)}): {md_text(d.reason)}.",
        "",
        f"Compared on the {md_text(result.evaluated_on)} rows of this run's data. "
        f"Champion before: {before}; after: {after}.",
        "",
        "| | version | MSE | R² |",
        "|---|---|---|---|",
        f"| challenger | {d.challenger_version} | {d.challenger_metrics['mse']:.6g} | "
        f"{d.challenger_metrics['r2']:.6g} |",
    ]
    if d.champion_metrics:
        lines.append(
            f"| champion | {d.champion_version} | {d.champion_metrics['mse']:.6g} | "
            f"{d.champion_metrics['r2']:.6g} |"
        )
    return "\n".join(lines)


def quarantine_markdown(summary: QuarantineSummary) -> str:
    lines = [
        "## Quarantined rows",
        f"{summary.rows_rejected} of {summary.rows_read} rows ({summary.fraction:.2%}) failed a "
        f"row check and were set aside (at most {summary.max_invalid_fraction:.2%} allowed); "
        f"the model was trained and evaluated on the other {summary.rows_used}. Each one is "
        "listed with the check it failed in `quarantine.csv` in the run folder.",
    ]
    if summary.by_check:
        lines += ["", "| check | rows |", "|---|---|"]
        lines += [f"| {md_text(check)} | {n} |" for check, n in summary.by_check.items()]
    return "\n".join(lines)


def log_data_summary(valid: ValidatedData, quarantine: QuarantineSummary | None) -> None:
    """One log line for the data the run will use, and one for any rows set aside."""
    logger = get_run_logger()
    if quarantine is not None and quarantine.rows_rejected:
        logger.warning(
            "quarantined %d of %d rows (%s); training on the other %d",
            quarantine.rows_rejected,
            quarantine.rows_read,
            ", ".join(f"{check}: {n}" for check, n in quarantine.by_check.items()),
            quarantine.rows_used,
        )
    shown = name_list(valid.features, quote=False)
    logger.info(
        "%s: %d rows, features %s, target '%s'",
        valid.source,
        len(valid.frame),
        shown,
        valid.target,
    )


report_task = pipeline_task(publish_report, name="report")
gate_stop_report_task = pipeline_task(publish_gate_stop, name="gate-report")
unchanged_report_task = pipeline_task(publish_unchanged, name="unchanged-report")
