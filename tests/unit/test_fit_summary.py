"""regflow.stats.fit_summary: the streaming summary agrees with the exact QR one, or declines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import regflow.stats.fit_summary as fs
import regflow.stats.moment_sweeps as sweeps
from regflow.stats.least_squares import analyse_least_squares, fit_least_squares
from regflow.tasks.gate import correlation_gate


def columns_of(x: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(x[:, j]) for j in range(x.shape[1])]


def exact(x: np.ndarray, y: np.ndarray, fit_intercept: bool) -> fs.FitSummary:
    return fs.summarise_analysis(analyse_least_squares(x, y, fit_intercept=fit_intercept))


def assert_same_summary(fast: fs.FitSummary, ref: fs.FitSummary) -> None:
    assert fast.method == "moments" and ref.method == "qr"
    assert fast.rank == ref.rank
    assert fast.sse == pytest.approx(ref.sse, rel=1e-9)
    assert fast.sst == pytest.approx(ref.sst, rel=1e-12)
    assert fast.r2 == pytest.approx(ref.r2, rel=1e-9, abs=1e-12)
    assert fast.condition_number == pytest.approx(ref.condition_number, rel=1e-6)
    np.testing.assert_allclose(fast.correlations, ref.correlations, rtol=1e-9, atol=1e-12)
    assert fast.max_leverage.row == ref.max_leverage.row
    assert fast.max_leverage.value == pytest.approx(ref.max_leverage.value, rel=1e-7)
    assert ref.max_cooks_distance is not None and fast.max_cooks_distance is not None
    assert fast.max_cooks_distance.row == ref.max_cooks_distance.row
    assert fast.max_cooks_distance.value == pytest.approx(ref.max_cooks_distance.value, rel=1e-6)
    assert ref.curvature is not None and fast.curvature is not None
    assert fast.curvature.df_resid == ref.curvature.df_resid
    assert fast.curvature.ss_reduction == pytest.approx(
        ref.curvature.ss_reduction, rel=1e-6, abs=1e-9 * ref.sse
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("d", [1, 3, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_moments_match_the_qr_summary(d: int, fit_intercept: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 30_000
    # Far from the origin, unequal scales, a curved part and one wild row: every statistic
    # the gate reads has something to find.
    x = rng.normal(loc=50.0, scale=rng.uniform(0.1, 10.0, size=d), size=(n, d))
    x[123] += 40.0 * x[:, 0].std()
    y = 2.0 + x @ rng.uniform(-2.0, 2.0, size=d) + 0.01 * (x[:, 0] - 50.0) ** 2
    y += rng.normal(scale=3.0, size=n)
    y[4567] += 200.0
    fast = fs.summarise_by_moments(columns_of(x), y, fit_intercept=fit_intercept)
    assert fast is not None
    assert_same_summary(fast, exact(x, y, fit_intercept))


def test_moments_are_the_same_in_any_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200_000, 2))
    y = x @ [1.0, -1.0] + rng.normal(size=200_000)
    results = []
    for workers in (1, 2, 4):
        monkeypatch.setattr(sweeps, "_MAX_WORKERS", workers)
        monkeypatch.setattr(sweeps, "_BLOCK_ELEMENTS", 1 << 14)  # many blocks per worker
        summary = fs.summarise_by_moments(columns_of(x), y)
        assert summary is not None
        results.append(summary)
    for other in results[1:]:
        assert other.sse == pytest.approx(results[0].sse, rel=1e-12)
        for name in ("max_cooks_distance", "max_leverage"):
            mine, first = getattr(other, name), getattr(results[0], name)
            assert mine.row == first.row
            assert mine.value == pytest.approx(first.value, rel=1e-12)


@pytest.mark.parametrize(
    "case",
    ["constant_feature", "constant_target", "collinear", "perfect_fit", "nan", "inf", "tiny_n"],
)
def test_moments_decline_where_only_qr_is_reliable(case: str) -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    x = rng.normal(size=(n, 2))
    y = x @ [1.0, 2.0] + rng.normal(size=n)
    if case == "constant_feature":
        x[:, 1] = 7.0
    elif case == "constant_target":
        y[:] = 1.5
    elif case == "collinear":
        x[:, 1] = 3.0 * x[:, 0] + 1e-9 * rng.normal(size=n)
    elif case == "perfect_fit":
        y = x @ [1.0, 2.0] + 4.0
    elif case == "nan":
        x[10, 0] = np.nan
    elif case == "inf":
        y[20] = np.inf
    elif case == "tiny_n":
        x, y = x[:4], y[:4]
    assert fs.summarise_by_moments(columns_of(x), y) is None


def test_summarise_fit_uses_moments_only_on_long_columns() -> None:
    rng = np.random.default_rng(4)
    n = fs.MOMENTS_MIN_ROWS
    x = rng.normal(size=(n, 1))
    y = x[:, 0] + rng.normal(size=n)
    assert fs.summarise_fit(columns_of(x), y).method == "moments"
    assert fs.summarise_fit(columns_of(x[:-1]), y[:-1]).method == "qr"
    x[:, 0] = 1.0  # declined: the exact analysis reports the constant column
    summary = fs.summarise_fit(columns_of(x), y)
    assert summary.method == "qr" and summary.constant_columns.tolist() == [True]


def test_gate_reports_the_same_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decisions, statistics and warnings do not depend on which summary the gate used."""
    rng = np.random.default_rng(6)
    n = 150_000
    x = rng.uniform(0.0, 10.0, size=n)
    x[77] = 400.0  # a far row with a wrong target: leverage and Cook's distance
    y = 1.0 + 0.5 * x + 0.2 * x**2 + rng.normal(size=n)  # curved
    y[77] = 0.0
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": y})
    fast = correlation_gate(frame, ["x", "z"], "y")
    monkeypatch.setattr(fs, "MOMENTS_MIN_ROWS", n + 1)
    slow = correlation_gate(frame, ["x", "z"], "y")
    assert fast.passed == slow.passed
    assert fast.reason == slow.reason
    assert fast.value == pytest.approx(slow.value, rel=1e-9)
    assert [(w.kind, w.message) for w in fast.warnings] == [
        (w.kind, w.message) for w in slow.warnings
    ]
    assert {"curvature", "influential_point"} <= {w.kind for w in fast.warnings}


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("subset", [False, True])
def test_reference_fit_matches_qr_on_all_rows_or_some(fit_intercept: bool, subset: bool) -> None:
    rng = np.random.default_rng(8)
    n = 2 * fs.MOMENTS_MIN_ROWS
    x = rng.normal(loc=[100.0, -3.0, 0.0], scale=[0.5, 4.0, 1.0], size=(n, 3))
    y = 7.0 + x @ [0.3, -1.2, 2.0] + rng.normal(scale=2.0, size=n)
    rows = np.sort(rng.choice(n, size=int(0.8 * n), replace=False)) if subset else None
    fast = fs.reference_fit(columns_of(x), y, rows=rows, fit_intercept=fit_intercept)
    assert fast.method == "moments"
    chosen = slice(None) if rows is None else rows
    exact = fit_least_squares(x[chosen], y[chosen], fit_intercept=fit_intercept)
    np.testing.assert_allclose(fast.coef, exact.coef, rtol=1e-8)
    assert fast.intercept == pytest.approx(exact.intercept, rel=1e-8, abs=1e-12)
    assert fast.sse == pytest.approx(exact.sse, rel=1e-12)
    assert fast.condition_number == pytest.approx(exact.condition_number, rel=1e-6)


def test_reference_fit_falls_back_to_qr_where_moments_decline() -> None:
    rng = np.random.default_rng(9)
    n = fs.MOMENTS_MIN_ROWS
    x = rng.normal(size=(n, 2))
    x[:, 1] = x[:, 0] + 1e-7 * rng.normal(size=n)  # condition number ~1e7
    y = x[:, 0] + rng.normal(size=n)
    rows = np.arange(0, n, 2)
    fit = fs.reference_fit(columns_of(x), y, rows=rows)
    exact = fit_least_squares(x[rows], y[rows])
    assert fit.method == "qr"
    np.testing.assert_array_equal(fit.coef, exact.coef)
    assert fit.sse == exact.sse


def test_evaluation_on_long_data_measures_the_gap_against_the_streaming_reference() -> None:
    """evaluate_model with a holdout: the optimum of the training rows, as QR would give it."""
    from regflow.tasks.evaluate import evaluate_model, make_split
    from regflow.tasks.train import fit_linear, resolve_config, select_device

    rng = np.random.default_rng(10)
    n = 2 * fs.MOMENTS_MIN_ROWS
    x = rng.normal(loc=5.0, scale=2.0, size=(n, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1]})
    frame["y"] = 1.0 + x @ [2.0, -0.5] + rng.normal(size=n)
    plan = make_split(n, 0.2, seed=0)
    assert plan.train_rows is not None
    train = frame.iloc[plan.train_rows]
    trained = fit_linear(train, ["a", "b"], "y", resolve_config("default"), select_device("cpu"))
    evaluation, predictions = evaluate_model(frame, ["a", "b"], "y", trained, plan)
    exact = fit_least_squares(x[plan.train_rows], frame["y"].to_numpy()[plan.train_rows])
    assert evaluation.ols_mse == pytest.approx(exact.sse / len(plan.train_rows), rel=1e-12)
    assert evaluation.ols_intercept == pytest.approx(exact.intercept, rel=1e-9)
    assert evaluation.optimality_gap is not None and -1e-10 <= evaluation.optimality_gap <= 1e-4
    assert len(predictions) == n
