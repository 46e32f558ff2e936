"""regflow.stats.least_squares: NIST StRD certified values, numpy cross-checks, the blocked path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regflow.stats.least_squares as ls
from regflow.stats.least_squares import analyse_least_squares, fit_least_squares

NIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nist"


def nist_case(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    if not (NIST / "certified.json").is_file():
        pytest.skip(f"NIST StRD reference data not found at {NIST.resolve()}")
    certified = json.loads((NIST / "certified.json").read_text())[name]
    frame = pd.read_csv(NIST / f"{name}.csv")
    x = frame.drop(columns="y").to_numpy(dtype=np.float64)
    return x, frame["y"].to_numpy(dtype=np.float64), certified


def digits(estimate: float, certified: float) -> float:
    """log relative error (LRE): the number of correct significant digits."""
    if estimate == certified:
        return 16.0
    if certified == 0.0:
        return -math.log10(abs(estimate))
    return min(16.0, -math.log10(abs(estimate - certified) / abs(certified)))


def parameter_digits(fit: ls.LeastSquaresFit, certified: dict) -> list[float]:
    estimates = ([fit.intercept] if certified["intercept"] else []) + list(fit.coef)
    expected = [p["estimate"] for p in certified["parameters"]]
    assert len(estimates) == len(expected)
    return [digits(e, c) for e, c in zip(estimates, expected, strict=True)]


@pytest.fixture(params=["single", "blocked"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on the one-QR path and on the row-block (tall-skinny QR) path."""
    if request.param == "blocked":
        # Blocks of 5 rows: every NIST file spans several blocks.
        monkeypatch.setattr(ls, "_BLOCK_ELEMENTS", 5 * 13)
        monkeypatch.setattr(ls, "_MIN_BLOCK_ROWS", 5)
    return request.param


# Minimum digits asserted: >= 9 where the brief demands it; for the harder files what this
# implementation measures (single / blocked) minus a margin. Measured: Wampler1 9.9 / 9.3,
# Wampler2 13.2 / 12.8, Wampler3 10.2 / 9.6, Wampler4 8.0 / 8.0, Wampler5 6.0 / 6.0.
REQUIRED_DIGITS = {
    "Longley": 9.0,
    "Pontius": 9.0,
    "NoInt1": 9.0,
    "NoInt2": 9.0,
    "Wampler1": 8.5,
    "Wampler2": 11.5,
    "Wampler3": 8.5,
    "Wampler4": 7.0,
    "Wampler5": 5.0,
}


@pytest.mark.parametrize("name", list(REQUIRED_DIGITS))
def test_nist_certified_parameters(name: str, layout: str) -> None:
    x, y, certified = nist_case(name)
    fit = fit_least_squares(x, y, fit_intercept=certified["intercept"])
    assert fit.rank == x.shape[1]
    worst = min(parameter_digits(fit, certified))
    assert worst >= REQUIRED_DIGITS[name], f"{name} ({layout}): only {worst:.2f} digits"
    assert digits(fit.r2, certified["r_squared"]) >= 9.0
    n_params = len(certified["parameters"])
    residual_sd = math.sqrt(fit.sse / (len(y) - n_params))
    if certified["residual_sd"] > 0.0:
        assert digits(residual_sd, certified["residual_sd"]) >= 9.0
    else:
        # Exact polynomial data: the residuals are rounding noise relative to y.
        assert residual_sd <= 1e-8 * float(np.abs(y).max())


def test_filip_is_flagged_ill_conditioned(layout: str) -> None:
    x, y, certified = nist_case("Filip")
    fit = fit_least_squares(x, y)
    assert fit.condition_number > 1e7
    # A stable method still gets the degree-10 polynomial to about 7 digits (measured 7.0-7.3).
    assert min(parameter_digits(fit, certified)) >= 6.0


def test_matches_numpy_lstsq_and_hat_matrix() -> None:
    rng = np.random.default_rng(7)
    n, d = 300, 4
    x = rng.normal(size=(n, d)) * [1.0, 10.0, 1e-3, 5.0] + [0.0, 100.0, 3.0, -2.0]
    y = x @ [1.0, -0.5, 200.0, 0.3] + 4.0 + rng.normal(size=n)
    fit = fit_least_squares(x, y)
    design = np.column_stack([np.ones(n), x])
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(fit.intercept, expected[0], rtol=1e-10)
    np.testing.assert_allclose(fit.coef, expected[1:], rtol=1e-10)
    np.testing.assert_allclose(fit.residuals, y - x @ fit.coef - fit.intercept, atol=1e-10)
    assert fit.sse == pytest.approx(float(fit.residuals @ fit.residuals), rel=1e-12)
    assert fit.r2 == pytest.approx(1.0 - fit.sse / float(((y - y.mean()) ** 2).sum()), rel=1e-12)
    q, _ = np.linalg.qr(design)
    np.testing.assert_allclose(fit.leverage, (q * q).sum(axis=1), rtol=1e-10, atol=1e-14)
    assert fit.leverage.sum() == pytest.approx(d + 1, rel=1e-12)


def test_no_intercept_matches_lstsq_and_uncentred_r2() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 2)) + 3.0
    y = x @ [2.0, -1.0] + rng.normal(size=50)
    fit = fit_least_squares(x, y, fit_intercept=False)
    expected, *_ = np.linalg.lstsq(x, y, rcond=None)
    np.testing.assert_allclose(fit.coef, expected, rtol=1e-11)
    assert fit.intercept == 0.0
    assert fit.r2 == pytest.approx(1.0 - fit.sse / float(y @ y), rel=1e-12)
    q, _ = np.linalg.qr(x)
    np.testing.assert_allclose(fit.leverage, (q * q).sum(axis=1), rtol=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_blocked_path_agrees_with_single_qr(
    fit_intercept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(9)
    n, d = 3001, 3
    x = rng.normal(size=(n, d)) + np.array([5.0, -1.0, 0.0])
    y = x @ [1.0, 2.0, -3.0] + 0.3 * x[:, 0] ** 2 + rng.normal(size=n)
    single = analyse_least_squares(x, y, fit_intercept)
    # Blocks of 700 rows: several blocks, chunked QR trees and chunked products with tails.
    monkeypatch.setattr(ls, "_BLOCK_ELEMENTS", 700 * (d + 2))
    blocked = analyse_least_squares(x, y, fit_intercept)
    for field in ("coef", "residuals", "leverage"):
        np.testing.assert_allclose(
            getattr(blocked.fit, field), getattr(single.fit, field), rtol=1e-9, atol=1e-12
        )
    assert blocked.fit.intercept == pytest.approx(single.fit.intercept, rel=1e-11, abs=1e-12)
    assert blocked.fit.condition_number == pytest.approx(single.fit.condition_number, rel=1e-9)
    assert blocked.curvature is not None and single.curvature is not None
    assert blocked.curvature.ss_reduction == pytest.approx(single.curvature.ss_reduction, rel=1e-8)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_curvature_term_equals_augmented_fit(fit_intercept: bool) -> None:
    rng = np.random.default_rng(10)
    n = 400
    x = rng.uniform(0.5, 3.0, size=(n, 2))
    y = x[:, 0] + 0.5 * x[:, 1] + 0.2 * (x[:, 0] + x[:, 1]) ** 2 + rng.normal(0, 0.3, n)
    analysis = analyse_least_squares(x, y, fit_intercept)
    fitted = y - analysis.fit.residuals
    base = fitted - (fitted.mean() if fit_intercept else 0.0)
    z = base**2
    augmented = np.column_stack([x, z])
    if fit_intercept:
        augmented = np.column_stack([np.ones(n), augmented])
    _, sse_augmented, *_ = np.linalg.lstsq(augmented, y, rcond=None)
    assert analysis.curvature is not None
    expected = analysis.fit.sse - float(sse_augmented[0])
    assert analysis.curvature.ss_reduction == pytest.approx(expected, rel=1e-8)
    assert analysis.curvature.df_resid == n - 2 - (1 if fit_intercept else 0) - 1


def test_correlations_match_numpy() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 3)) * [1.0, 1e6, 1e-6] + [1e8, 0.0, 5.0]
    y = x[:, 0] - x[:, 1] * 1e-6 + rng.normal(size=200)
    analysis = analyse_least_squares(x, y)
    expected = [np.corrcoef(x[:, j], y)[0, 1] for j in range(3)]
    np.testing.assert_allclose(analysis.correlations, expected, rtol=1e-10, atol=1e-13)


@pytest.mark.filterwarnings("error")
def test_rank_deficient_design_reports_rank() -> None:
    rng = np.random.default_rng(12)
    a = rng.normal(size=100)
    x = np.column_stack([a, 2.0 * a, np.full(100, 7.0), rng.normal(size=100)])
    y = 3.0 * a + x[:, 3] + rng.normal(0, 0.1, 100)
    analysis = analyse_least_squares(x, y)
    fit = analysis.fit
    assert fit.rank == 2
    assert math.isinf(fit.condition_number) or fit.condition_number > 1e13
    assert np.isfinite(fit.coef).all()
    assert fit.coef[2] == 0.0  # the constant column gets nothing
    assert analysis.constant_columns.tolist() == [False, False, True, False]
    assert analysis.null_space.shape == (4, 2)
    # Same fitted values as numpy's minimum-norm solution.
    design = np.column_stack([np.ones(100), x])
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(y - fit.residuals, design @ expected, rtol=1e-10)
    assert fit.leverage.sum() == pytest.approx(3.0, rel=1e-10)  # rank + intercept


def test_one_dimensional_x_and_tiny_inputs() -> None:
    fit = fit_least_squares(np.array([1.0, 2.0, 3.0, 3.5]), np.array([2.0, 4.0, 6.0, 7.0]))
    assert fit.coef == pytest.approx([2.0], rel=1e-14)
    assert fit.intercept == pytest.approx(0.0, abs=1e-14)
    assert fit.r2 == 1.0
    two = fit_least_squares(np.array([[1.0, 5.0], [2.0, 1.0]]), np.array([1.0, 3.0]))
    assert two.rank == 1
    assert two.leverage == pytest.approx([1.0, 1.0])


def test_large_offsets_and_scales_do_not_overflow() -> None:
    rng = np.random.default_rng(13)
    # Squares of these values overflow float64; the range pre-scaling keeps everything finite.
    x = rng.normal(size=(64, 2)) * [1e200, 1e-150] + [1e205, 0.0]
    y = 1e-200 * (x[:, 0] - 1e205) + 1e150 * x[:, 1] + rng.normal(0, 1e-6, size=64)
    fit = fit_least_squares(x, y)
    assert np.isfinite(fit.coef).all() and math.isfinite(fit.intercept)
    np.testing.assert_allclose(fit.coef / [1e-200, 1e150], [1.0, 1.0], rtol=1e-4)
    assert fit.intercept == pytest.approx(-1e5, rel=1e-4)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="NaN"):
        fit_least_squares(np.array([[1.0], [np.nan], [2.0]]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="y contains NaN"):
        fit_least_squares(np.array([[1.0], [3.0], [2.0]]), np.array([1.0, np.inf, 3.0]))
    with pytest.raises(ValueError, match="rows"):
        fit_least_squares(np.ones((3, 1)), np.ones(4))
    with pytest.raises(ValueError, match="at least one row"):
        fit_least_squares(np.ones((0, 2)), np.ones(0))
