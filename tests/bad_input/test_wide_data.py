"""Wide data (40 rows, 10,000 numeric features): the gate stops it on the row count, before
any least-squares work, and messages and log lines stay short however many columns there are."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_checks import regflow

from regflow.io.text import name_list
from regflow.schemas.frames import LoadedData
from regflow.tasks.gate import correlation_gate
from regflow.tasks.validate import validate_dataset

ROWS, FEATURES = 40, 10_000
REASON = "too few rows for 10000 features: 40 rows"


def _wide_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    names = [f"feature_with_a_long_name_{j:05d}" for j in range(FEATURES)]
    frame = pd.DataFrame(rng.normal(size=(ROWS, FEATURES)), columns=names)
    frame["y"] = rng.normal(size=ROWS)
    return frame


def test_name_list_caps_long_lists() -> None:
    assert name_list(["a", "b"]) == "'a', 'b'"
    assert name_list([f"x{j}" for j in range(10_000)], quote=False) == (
        "x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, ... and 9,990 more"
    )


def test_gate_stops_wide_data_on_the_row_count() -> None:
    frame = _wide_frame()
    valid = validate_dataset(LoadedData(frame, "wide.csv", "csv", "0", 0), "y", None)
    assert len(valid.features) == FEATURES
    report = correlation_gate(valid.frame, valid.features, valid.target)
    assert not report.passed
    assert report.reason.startswith(REASON)
    assert report.p_value == 1.0 and math.isnan(report.multiple_r)
    # Every feature's statistics are kept: they are data, not a message.
    assert len(report.features) == FEATURES
    assert report.features[7].r == pytest.approx(
        np.corrcoef(frame[valid.features[7]], frame["y"])[0, 1], rel=1e-12
    )
    assert len(report.reason) < 500 and not report.warnings


def test_too_few_rows_still_names_a_constant_target_first() -> None:
    frame = _wide_frame().iloc[:, :50].assign(y=1.0)
    report = correlation_gate(frame, [c for c in frame.columns if c != "y"], "y")
    assert not report.passed and "the target 'y' is constant" in report.reason


def test_too_few_rows_still_names_nan_values() -> None:
    frame = _wide_frame().iloc[:, :50].assign(y=1.0)
    frame.iloc[3, 4] = math.nan
    with pytest.raises(ValueError, match="has 1 NaN or infinite values"):
        correlation_gate(frame, [c for c in frame.columns if c != "y"], "y")


@pytest.mark.slow
def test_cli_stops_wide_data_with_short_output(prefect_harness: str, tmp_path: Path) -> None:
    data = tmp_path / "wide.csv"
    _wide_frame().to_csv(data, index=False)
    run = regflow(
        ["train", str(data), "--target", "y", "--out", str(tmp_path / "out")], prefect_harness
    )
    assert run.returncode == 3, run.stderr[-2000:]
    assert REASON in run.stderr
    assert len(run.stderr.encode()) < 5_000, run.stderr[:3000]
    longest = max((run.stdout + run.stderr).splitlines(), key=len)
    assert len(longest.encode()) < 2_000, longest[:500]
    assert "Traceback" not in run.stderr
