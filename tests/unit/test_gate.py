"""The correlation gate: decisions, reasons and warnings on small synthetic data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import regflow.tasks.gate as gate
from regflow.schemas.results import GateReport
from regflow.stats.least_squares import fit_least_squares
from regflow.tasks.gate import correlation_gate, gate_task

NIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nist"


def kinds(report: GateReport) -> list[str]:
    return [w.kind for w in report.warnings]


def test_strong_single_feature_passes() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=100)
    frame = pd.DataFrame({"x": x, "y": 3.0 * x + rng.normal(0, 0.5, 100)})
    report = correlation_gate(frame, ["x"], "y")
    assert report.passed and report.decision == "pass"
    assert report.statistic == "max_abs_r"
    assert report.value == pytest.approx(abs(np.corrcoef(x, frame["y"])[0, 1]), rel=1e-12)
    assert report.p_value < 1e-30
    assert "|r| = " in report.reason and "'x'" in report.reason
    assert "at least min_abs_r = 0.5" in report.reason
    assert report.warnings == []


def test_tutorial_seed_data_passes_without_warnings() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 3.5], "y": [2.0, 4.0, 6.0, 7.0]})
    report = correlation_gate(frame, ["x"], "y")
    assert report.passed
    assert report.value == pytest.approx(1.0, abs=1e-15)
    assert report.p_value == pytest.approx(0.0, abs=1e-12)
    assert report.warnings == []


def test_random_noise_stops_with_statistic_and_threshold() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
    report = correlation_gate(frame, ["x"], "y")
    assert not report.passed and report.decision == "stop"
    assert report.value < 0.5
    assert f"|r| = {report.value:.3g} for 'x' is below min_abs_r = 0.5" in report.reason
    r = float(np.corrcoef(frame["x"], frame["y"])[0, 1])
    expected_p = 2.0 * stats.t.sf(abs(r) * math.sqrt(198 / (1 - r * r)), 198)
    assert report.features[0].p_value == pytest.approx(expected_p, rel=1e-10)


def test_insignificant_correlation_stops_on_alpha() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 3.0, 2.0, 4.0]})
    report = correlation_gate(frame, ["x"], "y", min_abs_r=0.5)
    assert report.value == pytest.approx(0.8)
    assert not report.passed
    assert "is above alpha = 0.05" in report.reason
    assert report.reason.startswith(f"p-value {report.p_value:.3g} of |r|")


def test_several_features_use_multiple_r_and_f_test() -> None:
    rng = np.random.default_rng(3)
    n = 120
    x = rng.normal(size=(n, 3))
    y = x @ [0.4, -0.3, 0.2] + rng.normal(0, 1.0, n)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=y)
    report = correlation_gate(frame, ["a", "b", "c"], "y", min_abs_r=0.3)
    fit = fit_least_squares(x, y)
    assert report.statistic == "R"
    assert report.value == pytest.approx(math.sqrt(fit.r2), rel=1e-12)
    assert report.multiple_r == report.value
    f_statistic = (fit.r2 / 3) / ((1 - fit.r2) / (n - 4))
    assert report.p_value == pytest.approx(stats.f.sf(f_statistic, 3, n - 4), rel=1e-10)
    assert report.passed == (report.value >= 0.3 and report.p_value <= 0.05)
    assert "R = " in report.reason and "the 3 features" in report.reason
    assert [c.feature for c in report.features] == ["a", "b", "c"]


def test_too_few_rows_for_the_f_test_stops() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [0.0, 1.0, 0.5], "y": [1.0, 2.0, 3.0]})
    report = correlation_gate(frame, ["a", "b"], "y")
    assert not report.passed
    assert report.p_value == 1.0
    assert "too few rows" in report.reason and "2 features" in report.reason


def test_constant_target_stops() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [5.0] * 4})
    report = correlation_gate(frame, ["x"], "y")
    assert not report.passed
    assert "constant" in report.reason


def test_curvature_warning_for_a_parabola() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(-1.0, 2.0, 300)  # symmetric-ish: a line still catches part of x**2
    frame = pd.DataFrame({"x": x, "y": x**2 + rng.normal(0, 0.05, 300)})
    report = correlation_gate(frame, ["x"], "y")
    curvature = [w for w in report.warnings if w.kind == "curvature"]
    assert len(curvature) == 1
    assert curvature[0].value is not None and curvature[0].value > 0.9
    assert "squared term of 'x'" in curvature[0].message


def test_no_curvature_warning_for_a_noisy_line() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 2))
    y = x @ [1.0, 1.0] + rng.normal(size=2000)
    frame = pd.DataFrame(x, columns=["a", "b"]).assign(y=y)
    assert "curvature" not in kinds(correlation_gate(frame, ["a", "b"], "y"))


def test_negligible_curvature_on_many_rows_is_not_reported() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(0.0, 1.0, 50_000)
    # Significant (p ~ 0) but removes well under 1% of the residual sum of squares.
    y = x + 0.05 * x**2 + rng.normal(0, 0.1, x.size)
    frame = pd.DataFrame({"x": x, "y": y})
    assert "curvature" not in kinds(correlation_gate(frame, ["x"], "y"))


def test_far_outlier_is_an_influential_point() -> None:
    rng = np.random.default_rng(7)
    x = np.append(rng.normal(size=40), 500.0)
    y = np.append(x[:40] + rng.normal(0, 0.2, 40), 20.0)
    report = correlation_gate(pd.DataFrame({"x": x, "y": y}), ["x"], "y")
    influential = [w for w in report.warnings if w.kind == "influential_point"]
    assert influential, report.warnings
    assert influential[0].message.startswith("row 41 has leverage")
    assert influential[0].value is not None and influential[0].value >= 0.99


def test_outlier_that_flips_pearson_is_a_rank_disagreement() -> None:
    x = np.append(np.arange(1.0, 51.0), 1000.0)
    y = np.append(np.arange(1.0, 51.0) + np.sin(np.arange(50.0)), -1000.0)
    report = correlation_gate(pd.DataFrame({"x": x, "y": y}), ["x"], "y")
    feature = report.features[0]
    assert feature.r < 0 < feature.spearman
    assert feature.spearman == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)
    flagged = [w for w in report.warnings if w.kind == "rank_disagreement"]
    assert [w.feature for w in flagged] == ["x"]
    assert "Spearman" in flagged[0].message and "sample" not in flagged[0].message
    # The same row also dominates the fit.
    assert "influential_point" in kinds(report)


def test_spearman_handles_ties_like_scipy() -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(0, 5, 300).astype(float)
    y = x + rng.integers(0, 3, 300)
    report = correlation_gate(pd.DataFrame({"x": x, "y": y}), ["x"], "y")
    assert report.features[0].spearman == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)


def test_spearman_is_sampled_on_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "SPEARMAN_MAX_ROWS", 500)
    x = np.linspace(0.0, 1.0, 5000)
    frame = pd.DataFrame({"x": x, "y": np.exp(12.0 * x)})
    report = correlation_gate(frame, ["x"], "y")
    assert report.features[0].spearman == pytest.approx(1.0)
    flagged = [w for w in report.warnings if w.kind == "rank_disagreement"]
    assert flagged and "random sample of 500 of 5,000 rows" in flagged[0].message


def test_near_collinear_features_are_ill_conditioned() -> None:
    rng = np.random.default_rng(9)
    a = rng.normal(size=200)
    frame = pd.DataFrame({"a": a, "b": a + rng.normal(0, 1e-9, 200), "y": a + rng.normal(size=200)})
    report = correlation_gate(frame, ["a", "b"], "y")
    assert report.condition_number > 1e7
    flagged = [w for w in report.warnings if w.kind == "ill_conditioned"]
    assert len(flagged) == 1
    assert "float32" in flagged[0].message and "digits" in flagged[0].message


def test_exactly_collinear_and_constant_features_are_named() -> None:
    rng = np.random.default_rng(10)
    a = rng.normal(size=60)
    frame = pd.DataFrame({"a": a, "b": 2.0 * a, "k": 1.0, "y": a + rng.normal(0, 0.1, 60)})
    report = correlation_gate(frame, ["a", "b", "k"], "y")
    flagged = [w for w in report.warnings if w.kind == "ill_conditioned"]
    assert len(flagged) == 1
    message = flagged[0].message
    assert "rank 1" in message and "constant: 'k'" in message and "'a', 'b'" in message
    constant = report.features[2]
    assert (constant.r, constant.p_value) == (0.0, 1.0)


def test_filip_gets_an_ill_conditioned_warning() -> None:
    if not (NIST / "Filip.csv").is_file():
        pytest.skip(f"NIST StRD reference data not found at {NIST.resolve()}")
    frame = pd.read_csv(NIST / "Filip.csv")
    features = [c for c in frame.columns if c != "y"]
    report = correlation_gate(frame, features, "y")
    assert report.condition_number > 1e7
    assert "ill_conditioned" in kinds(report)


def test_invalid_arguments_raise() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan], "s": ["a", "b", "c"], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="feature 'x' has 1 NaN"):
        correlation_gate(frame, ["x"], "y")
    with pytest.raises(ValueError, match="not numeric"):
        correlation_gate(frame, ["s"], "y")
    with pytest.raises(ValueError, match="not in the data"):
        correlation_gate(frame, ["nope"], "y")
    with pytest.raises(ValueError, match="alpha"):
        correlation_gate(frame.drop(columns="s").fillna(0.0), ["x"], "y", alpha=0.0)


def test_gate_task_is_a_thin_prefect_task() -> None:
    assert gate_task.name == "correlation-gate"
    assert gate_task.retries in (0, None)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 3.5], "y": [2.0, 4.0, 6.0, 7.0]})
    assert gate_task.fn(frame, ["x"], "y").passed


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    n=st.integers(min_value=8, max_value=300),
    d=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    scale=st.floats(min_value=1e-3, max_value=1e3),
    shift=st.floats(min_value=-10.0, max_value=10.0),
)
def test_property_matches_numpy(n: int, d: int, seed: int, scale: float, shift: float) -> None:
    # Well-conditioned even for numpy's uncentred [1 | X]: offsets of at most 10 spreads.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * scale + shift * scale
    y = x @ rng.normal(size=d) + rng.normal(size=n) * scale
    columns = [f"x{j}" for j in range(d)]
    report = correlation_gate(pd.DataFrame(x, columns=columns).assign(y=y), columns, "y")
    for j, item in enumerate(report.features):
        assert item.r == pytest.approx(np.corrcoef(x[:, j], y)[0, 1], rel=1e-10, abs=1e-12)
    fit = fit_least_squares(x, y)
    design = np.column_stack([np.ones(n), x])
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    # Relative to the coefficient vector's size: a coefficient near 0 has no relative digits.
    size = float(np.abs(expected[1:]).max())
    np.testing.assert_allclose(fit.coef, expected[1:], rtol=1e-10, atol=1e-10 * size)


def test_constant_feature_stops_with_a_clear_reason() -> None:
    frame = pd.DataFrame({"x": [2.0] * 5, "y": [1.0, 3.0, 2.0, 5.0, 4.0]})
    report = correlation_gate(frame, ["x"], "y")
    assert not report.passed
    assert report.reason.startswith("feature 'x' is constant")
    assert report.features[0].r == 0.0 and report.features[0].p_value == 1.0
