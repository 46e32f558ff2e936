"""Markdown injection: user strings in the report render as text, never as markup or HTML."""

from __future__ import annotations

import re

import pandas as pd

from regflow.io.markdown import md_text
from regflow.schemas.promotion import PromotionDecision, PromotionResult
from regflow.schemas.results import (
    Evaluation,
    FeatureCorrelation,
    GateReport,
    GateWarning,
    QuarantineSummary,
    SplitMetrics,
    TrainResult,
)
from regflow.tasks.report import (
    gate_markdown,
    plots_markdown,
    promotion_markdown,
    quarantine_markdown,
    report_markdown,
)

EVIL = "a|b\n# H1<img src=x onerror=alert(1)>"
CELL_SPLIT = re.compile(r"(?<!\\)\|")  # a pipe that is not escaped ends a cell


def _gate() -> GateReport:
    return GateReport.model_construct(
        n_rows=40,
        features=[
            FeatureCorrelation(feature=EVIL, r=0.9, p_value=0.01, spearman=0.8),
            FeatureCorrelation(feature="x", r=0.5, p_value=0.02, spearman=0.4),
        ],
        statistic="max_abs_r",
        value=0.9,
        p_value=0.01,
        min_abs_r=0.1,
        alpha=0.05,
        condition_number=1.0,
        passed=True,
        reason=f"|r| = 0.9 for '{EVIL}' is above min_abs_r = 0.1",
        warnings=[GateWarning(kind="curvature", message=f"'{EVIL}' bends", feature=EVIL)],
    )


def _report() -> str:
    metrics = SplitMetrics.model_construct(split="train", n=40, mse=1.0, rmse=1.0, mae=1.0, r2=0.9)
    trained = TrainResult.model_construct(
        coefficients={EVIL: 2.0, "x": 1.0},
        intercept=0.5,
        optimizer="adam",
        device="cpu",
        device_name="AMD EPYC",
        dtype="float32",
        epochs_run=10,
        stop_reason="converged",
    )
    evaluation = Evaluation.model_construct(
        metrics={"train": metrics},
        fit_split="train",
        holdout_note="no holdout",
        ols_mse=1.0,
        optimality_gap=0.0,
        optimality_gap_abs=0.0,
        reference_trusted=True,
    )
    decision = PromotionDecision.model_construct(
        rule="no_champion",
        reason=f"no champion for {EVIL}",
        challenger_version=1,
        challenger_metrics={"mse": 1.0, "r2": 0.9},
        champion_version=None,
        champion_metrics=None,
    )
    promotion = PromotionResult.model_construct(
        decision=decision, promoted=True, champion_before=None, champion_after=1, evaluated_on=EVIL
    )
    quarantine = QuarantineSummary.model_construct(
        rows_read=10,
        rows_rejected=1,
        rows_used=9,
        fraction=0.1,
        max_invalid_fraction=0.2,
        by_check={"coerce_dtype": 1},
    )
    predictions = pd.DataFrame(
        {"true": [1.0], "predicted": [1.5], "residual": [-0.5], "split": ["train"]}
    )
    return report_markdown(
        EVIL,
        _gate(),
        trained,
        evaluation,
        predictions,
        {EVIL: b"\x89PNG"},
        [promotion_markdown(promotion, f"{EVIL}@1"), quarantine_markdown(quarantine)],
    )


def _tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return tables


def test_user_strings_cannot_inject_markup_into_the_report() -> None:
    text = _report()
    assert "<img" not in text and "<" not in text.replace("&lt;", "")
    assert not any(line.lstrip().startswith("# H1") for line in text.splitlines())
    tables = _tables(text)
    assert len(tables) == 5  # gate, metrics, promotion, quarantine, preview
    for rows in tables:
        assert len({len(CELL_SPLIT.split(row)) for row in rows}) == 1, rows
    assert md_text(EVIL) in gate_markdown(_gate())


def test_md_text_escapes_markdown_and_html_on_one_line() -> None:
    assert md_text(EVIL) == r"a\|b \# H1&lt;img src=x onerror=alert\(1\)&gt;"
    assert md_text("*_`[x](y)`_*!\\ & {+-}\r\n") == r"\*\_\`\[x\]\(y\)\`\_\*\!\\ &amp; \{\+\-\} "
    assert md_text("plain text 1.5") == "plain text 1.5"


def test_plot_captions_from_names_are_escaped() -> None:
    assert "<img" not in plots_markdown({EVIL: b"\x89PNG"})
