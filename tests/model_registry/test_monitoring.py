"""Monitoring: the verdict's arithmetic (by hand), the registry's records and schema upgrade,
`regflow models monitor`, and a read-only registry that cannot keep the record."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runfolder import make_run
from typer.testing import CliRunner

from regflow.cli import app
from regflow.registry import NotFoundError, Registry
from regflow.schemas.model_card import CARD_FILE, ModelCard
from regflow.stats.drift import summarize_column
from regflow.stats.monitoring import labelled_target, monitor

runner = CliRunner()


@pytest.fixture
def card(tmp_path: Path) -> ModelCard:
    # The run folder's card: metrics "train" and "all" with mse 0.25 (no holdout).
    root = make_run(tmp_path / "run", mse=0.25)
    return ModelCard.model_validate_json((root / CARD_FILE).read_text())


def _with_summary(card: ModelCard, x: np.ndarray, y: np.ndarray) -> ModelCard:
    summary = {"x": summarize_column(x), "y": summarize_column(y)}
    return card.model_copy(update={"feature_summary": summary})


def test_mse_ratio_against_the_reference_split(card: ModelCard) -> None:
    x = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    y = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = y + np.array([0.5, -0.5, 0.5, -0.5])  # squared errors 0.25 each: MSE 0.25
    same = monitor(card, x, y, predicted, model_ref="demo:1")
    # No holdout in this card: the reference is its first split, "train", MSE 0.25.
    assert same.reference_split == "train" and same.reference_mse == 0.25
    (check,) = same.checks  # no training summary, so no drift checks
    assert (check.name, check.value, check.failed) == ("mse_ratio", 1.0, False)
    assert same.status == "ok" and same.live is not None and same.live.mae == 0.5
    assert any("no training summary" in n for n in same.notes)
    worse = monitor(card, x, y, y + 1.0, model_ref="demo:1")  # MSE 1: ratio 4
    assert worse.checks[0].value == 4.0 and worse.status == "degraded"
    assert worse.failed == ["mse_ratio"]
    assert monitor(card, x, y, y + 1.0, model_ref="demo:1", max_mse_ratio=4.0).status == "ok"


def test_an_exact_fit_is_judged_against_float_rounding(card: ModelCard) -> None:
    x = np.array([1.0, 2.0, 3.0, 3.5])
    # y's mean is 4.75; deviations -2.75, -0.75, 1.25, 2.25; variance 14.75 / 4 = 3.6875.
    y = 2 * x
    exact = _with_summary(card, x, y)
    metrics = {k: v.model_copy(update={"mse": 0.0}) for k, v in exact.metrics.items()}
    exact = exact.model_copy(update={"metrics": metrics})
    frame = pd.DataFrame({"x": x})
    ok = monitor(exact, frame, y, y.copy(), model_ref="demo:1")
    assert ok.mse_floor == pytest.approx(1e-9 * 3.6875) and ok.checks[0].value == 0.0
    assert ok.status == "ok"
    # MSE 1e-8 against a floor of 3.6875e-9: ratio 2.71..., degraded.
    off = monitor(exact, frame, y, y + 1e-4, model_ref="demo:1")
    assert off.checks[0].value == pytest.approx(1e-8 / 3.6875e-9, rel=1e-6)
    assert off.failed == ["mse_ratio"]


def test_drift_checks_each_feature(card: ModelCard) -> None:
    x = np.arange(1.0, 101.0)
    drifting = _with_summary(card, x, 2 * x)
    same = monitor(drifting, pd.DataFrame({"x": x}), 2 * x, 2 * x, model_ref="demo:1")
    assert [(c.name, c.value) for c in same.checks] == [("mse_ratio", 0.0), ("psi:x", 0.0)]
    # All live values in the top training decile (91..100): its share goes 0.1 -> 1, every
    # other bin 0.1 -> floor 1e-4. PSI = (1 - 0.1) ln(10) + 9 (1e-4 - 0.1) ln(1e-3).
    live = np.linspace(91.0, 100.0, 50)
    shifted = monitor(drifting, pd.DataFrame({"x": live}), 2 * live, 2 * live, model_ref="demo:1")
    expected = 0.9 * np.log(10.0) + 9 * (1e-4 - 0.1) * np.log(1e-3)
    assert shifted.checks[1].value == pytest.approx(expected, rel=1e-9)
    assert shifted.failed == ["psi:x"] and shifted.status == "degraded"
    assert shifted.drift[0].live_mean == pytest.approx(95.5)


def test_unlabelled_rows_are_left_out(card: ModelCard) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["1.5", "n/a", ""]})
    y = labelled_target(frame, "y")
    assert np.isnan(y[1:]).all() and y[0] == 1.5
    report = monitor(card, frame[["x"]], y, np.array([1.0, 2.0, 3.0]), model_ref="demo:1")
    assert (report.rows_scored, report.rows_labelled) == (3, 1)
    assert report.live is not None and report.live.mse == 0.25
    assert "2 rows without a numeric target left out of MSE" in report.notes
    none = monitor(card, frame[["x"]], np.full(3, np.nan), np.zeros(3), model_ref="demo:1")
    assert none.live is None and none.checks == [] and none.status == "ok"


def test_records_are_kept_per_version_and_listed(
    registry: Registry, run_factory: object, card: ModelCard
) -> None:
    registry.register("demo", run_factory())  # type: ignore[operator]
    registry.register("demo", run_factory())  # type: ignore[operator]
    for version, status in ((1, "ok"), (2, "degraded"), (2, "ok")):
        failed = ["psi:x"] if status == "degraded" else []
        registry.record_monitoring(
            "demo", version, status=status, rows=10, failed=failed, report={"status": status}
        )
    listed = registry.list_monitoring("demo")
    assert [(r.version, r.status) for r in listed] == [(1, "ok"), (2, "degraded"), (2, "ok")]
    assert [r.status for r in registry.list_monitoring("demo", version=2)] == ["degraded", "ok"]
    assert [r.id for r in registry.list_monitoring("demo", limit=1)] == [listed[-1].id]
    with pytest.raises(NotFoundError):
        registry.record_monitoring("demo", 9, status="ok", rows=1, failed=[], report={})
    with pytest.raises(NotFoundError):
        registry.list_monitoring("other")

    done = runner.invoke(app, ["models", "monitor", "demo", "--registry", registry.location])
    assert done.exit_code == 0, done.output
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and "demo:2\tdegraded" in lines[1] and "failed: psi:x" in lines[1]
    as_json = runner.invoke(
        app, ["models", "monitor", "demo", "--version", "1", "--json", "--registry",
              registry.location],
    )  # fmt: skip
    payload = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert [r["version"] for r in payload["records"]] == [1]


def test_an_index_of_schema_1_is_upgraded_when_written(tmp_path: Path, run_factory: object) -> None:
    root = tmp_path / "old"
    with Registry.open(root) as reg:
        reg.register("demo", run_factory())  # type: ignore[operator]
    # What regflow before monitoring (and Alembic) wrote: schema version 1, no monitoring table.
    with sqlite3.connect(root / "index.db") as db:
        db.execute("DROP TABLE monitoring")
        db.execute("DROP TABLE alembic_version")
        db.execute("UPDATE registry_meta SET value = '1' WHERE key = 'schema_version'")
    with Registry.open(root, read_only=True) as reg:  # reads as before, nothing written
        assert reg.list_monitoring("demo") == [] and reg.resolve("demo").version == 1
    with sqlite3.connect(root / "index.db") as db:
        assert db.execute("SELECT value FROM registry_meta").fetchone() == ("1",)
    with Registry.open(root) as reg:  # a writer upgrades it
        reg.record_monitoring("demo", 1, status="ok", rows=3, failed=[], report={})
        assert len(reg.list_monitoring("demo")) == 1
    with sqlite3.connect(root / "index.db") as db:
        assert db.execute("SELECT value FROM registry_meta").fetchone() == ("2",)
