"""regflow.stats.drift against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from regflow.stats.drift import (
    PSI_FLOOR,
    SUMMARY_QUANTILES,
    ColumnSummary,
    feature_drift,
    ks_distance,
    population_stability_index,
    summarize_column,
)

ONE_TO_HUNDRED = np.arange(1, 101, dtype=np.float64)
# 70 zeros then 30 ones.
ZERO_ONE = np.concatenate([np.zeros(70), np.ones(30)])


@pytest.fixture(scope="module")
def hundred() -> ColumnSummary:
    return summarize_column(ONE_TO_HUNDRED)


@pytest.fixture(scope="module")
def zero_one() -> ColumnSummary:
    return summarize_column(ZERO_ONE)


@pytest.fixture(scope="module")
def uniform() -> ColumnSummary:
    return summarize_column(np.linspace(0.0, 1.0, 100_001))


def test_summary_of_one_to_hundred(hundred: ColumnSummary) -> None:
    assert hundred.n == 100
    assert hundred.mean == pytest.approx(50.5)  # (1 + 100) / 2
    # Population variance of 1..n is (n^2 - 1) / 12 = 9999 / 12 = 833.25.
    assert hundred.std == pytest.approx(math.sqrt(833.25))
    assert (hundred.min, hundred.max) == (1.0, 100.0)
    # Linear rule: quantile p sits at sorted index p * (n - 1) = 0.99 k for p = k / 100, and
    # value = index + 1, so quantiles[k] = 1 + 0.99 k: 1, 1.99, ..., 50.5 (k = 50), ..., 100.
    assert len(hundred.quantiles) == SUMMARY_QUANTILES
    expected_quantiles = [1.0 + 0.99 * k for k in range(101)]
    assert hundred.quantiles == pytest.approx(expected_quantiles, abs=1e-12)
    assert hundred.quantiles[0] == 1.0
    assert hundred.quantiles[100] == 100.0
    # Deciles p = j / 10 at index 9.9 j: value 1 + 9.9 j = 10.9, 20.8, ..., 90.1.
    expected_edges = [10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1]
    assert hundred.bin_edges == pytest.approx(expected_edges, abs=1e-12)
    # (-inf, 10.9] holds 1..10, (10.9, 20.8] holds 11..20, ..., (90.1, inf) holds 91..100.
    assert hundred.bin_fractions == pytest.approx([0.1] * 10, abs=1e-15)


def test_psi_of_training_data_against_itself_is_zero(hundred: ColumnSummary) -> None:
    # Every live share equals its expected share, so every term (a - e) ln(a / e) is 0.
    assert population_stability_index(hundred, ONE_TO_HUNDRED) == 0.0


def test_psi_all_live_values_in_one_bin(hundred: ColumnSummary) -> None:
    # All live values are 5, in bin 0 (expected 0.1): a = 1 there, 0 -> floor 1e-4 elsewhere.
    # (1 - 0.1) ln(1 / 0.1) + 9 (1e-4 - 0.1) ln(1e-4 / 0.1)
    #   = 0.9 ln 10 + 9 * 0.0999 ln 1000 = 2.0723266 + 6.2107628 = 8.2830894
    expected = 0.9 * math.log(10.0) + 9 * 0.0999 * math.log(1000.0)
    assert expected == pytest.approx(8.2830894, abs=1e-7)
    assert population_stability_index(hundred, np.full(50, 5.0)) == pytest.approx(expected)


def test_psi_shifted_moves_mass_between_two_bins(hundred: ColumnSummary) -> None:
    # Live 11..110: bin 0 (-inf, 10.9] is empty (a = floor 1e-4), bins 1..8 still hold ten
    # values each (a = 0.1 = e, term 0), the top bin (90.1, inf) holds 91..110 (a = 0.2).
    # (1e-4 - 0.1) ln(1e-4 / 0.1) + (0.2 - 0.1) ln(0.2 / 0.1)
    #   = 0.0999 ln 1000 + 0.1 ln 2 = 0.6900848 + 0.0693147 = 0.7593995
    expected = 0.0999 * math.log(1000.0) + 0.1 * math.log(2.0)
    assert expected == pytest.approx(0.7593995, abs=1e-7)
    live = np.arange(11, 111, dtype=np.float64)
    assert population_stability_index(hundred, live) == pytest.approx(expected)


def test_discrete_column_collapses_to_two_bins(zero_one: ColumnSummary) -> None:
    assert zero_one.n == 100
    assert zero_one.mean == pytest.approx(0.3)
    assert zero_one.std == pytest.approx(math.sqrt(0.3 * 0.7))  # Bernoulli: sqrt(p (1 - p))
    # Decile j / 10 sits at index 9.9 j. Zeros fill indices 0..69, ones 70..99:
    # j = 1..6 -> 0; j = 7 -> index 69.3 -> 0 + 0.3 (1 - 0) = 0.3; j = 8, 9 -> 1.
    # Distinct candidates 0, 0.3, 1. (0, 0.3] holds no training value and (1, inf) neither,
    # so 0.3 and 1 are dropped: one edge at 0, bins (-inf, 0] and (0, inf).
    assert zero_one.bin_edges == [0.0]
    assert zero_one.bin_fractions == pytest.approx([0.7, 0.3], abs=1e-15)
    # quantiles[k] at index 0.99 k: 0 for k <= 69 (69.31 <= 69 fails only at k = 70),
    # k = 70 -> index 69.3 -> 0.3, k >= 71 -> index >= 70.29 -> 1.
    assert zero_one.quantiles[69] == 0.0
    assert zero_one.quantiles[70] == pytest.approx(0.3)
    assert zero_one.quantiles[71] == 1.0


def test_psi_discrete_column_half_and_half(zero_one: ColumnSummary) -> None:
    # a = (0.5, 0.5), e = (0.7, 0.3):
    # (0.5 - 0.7) ln(0.5 / 0.7) + (0.5 - 0.3) ln(0.5 / 0.3) = 0.2 ln(7/5) + 0.2 ln(5/3)
    #   = 0.2 ln(7/3) = 0.2 * 0.8472979 = 0.1694596
    live = np.array([0.0, 1.0] * 50)
    expected = 0.2 * math.log(7.0 / 3.0)
    assert expected == pytest.approx(0.1694596, abs=1e-7)
    assert population_stability_index(zero_one, live) == pytest.approx(expected)


def test_psi_bins_are_right_closed(zero_one: ColumnSummary) -> None:
    # A live value equal to the edge 0 belongs to (-inf, 0]: all zeros give a = (1, floor).
    # (1 - 0.7) ln(1 / 0.7) + (1e-4 - 0.3) ln(1e-4 / 0.3) = 0.3 ln(1 / 0.7) + 0.2999 ln 3000
    #   = 0.1070025 + 2.4011096 = 2.5081121
    expected = 0.3 * math.log(1.0 / 0.7) + (PSI_FLOOR - 0.3) * math.log(PSI_FLOOR / 0.3)
    assert expected == pytest.approx(2.5081121, abs=1e-7)
    assert population_stability_index(zero_one, np.zeros(10)) == pytest.approx(expected)


def test_constant_column_has_one_bin_and_no_drift_against_itself() -> None:
    summary = summarize_column(np.full(20, 3.0))
    # Every decile is 3 and nothing lies above it, so the only candidate edge is dropped.
    assert (summary.bin_edges, summary.bin_fractions) == ([], [1.0])
    assert summary.std == 0.0
    # One bin: a = e = 1, PSI 0. F_train jumps 0 -> 1 at 3, as does the live ECDF.
    assert population_stability_index(summary, np.full(5, 3.0)) == 0.0
    assert ks_distance(summary, np.full(5, 3.0)) == 0.0


def test_ks_uniform_against_a_point_mass(uniform: ColumnSummary) -> None:
    # F_train(x) ~ x on [0, 1]. Live all 0.5: F_live jumps 0 -> 1 at 0.5, and
    # |0 - F_train(0.5-)| = |1 - F_train(0.5)| = 0.5.
    assert ks_distance(uniform, np.full(10, 0.5)) == pytest.approx(0.5, abs=1e-3)


def test_ks_uniform_against_its_own_values(uniform: ColumnSummary) -> None:
    # F_live at the i-th point (0-based) is (i + 1) / 100001 against F_train = i / 100000:
    # a gap of about 1e-5, far inside the ~0.01 resolution.
    live = np.linspace(0.0, 1.0, 100_001)
    assert ks_distance(uniform, live) < 0.011


def test_ks_uniform_shifted(uniform: ColumnSummary) -> None:
    # Live uniform on [0.3, 1.3]: F_live(x) = x - 0.3 there, F_train(x) = x on [0, 1], so the
    # gap is 0.3 on [0.3, 1], 0.3 just below 0.3 (F_train = 0.3, F_live = 0) and 1 - (x - 0.3)
    # < 0.3 past 1: the supremum is 0.3.
    live = np.linspace(0.0, 1.0, 100_001) + 0.3
    assert ks_distance(uniform, live) == pytest.approx(0.3, abs=1e-3)


def test_ks_discrete_all_ones(zero_one: ColumnSummary) -> None:
    # F_live is 0 below 1 and 1 from 1 on. The smallest k with quantiles[k] == 1 is 71
    # (quantiles[70] = 0.3), so F_train(1-) = 0.71 and F_train(1) = 1:
    # sup = max(|0 - 0.71|, |1 - 1|) = 0.71. The true distance 0.7 is off by one quantile
    # step: the 0.01 resolution of a 101-quantile summary.
    assert ks_distance(zero_one, np.ones(25)) == pytest.approx(0.71, abs=1e-12)
    # All zeros: the largest k with quantiles[k] == 0 is 69, so F_train(0) = 0.69 and
    # F_train(0-) = 0: sup = max(|1 - 0.69|, |0 - 0|) = 0.31.
    assert ks_distance(zero_one, np.zeros(25)) == pytest.approx(0.31, abs=1e-12)


def test_ks_discrete_exact_where_quantiles_are_sample_points() -> None:
    # 101 values (70 zeros, 31 ones): quantile k / 100 sits at index k exactly, so
    # quantiles[69] = 0 and quantiles[70] = 1. F_train(1-) = 0.70: live all ones -> 0.7 exactly.
    summary = summarize_column(np.concatenate([np.zeros(70), np.ones(31)]))
    assert ks_distance(summary, np.ones(3)) == 0.7


def test_non_finite_values_are_ignored(hundred: ColumnSummary) -> None:
    noisy = np.concatenate([ONE_TO_HUNDRED, [np.nan, np.inf, -np.inf]])
    assert summarize_column(noisy) == hundred
    live = np.array([5.0, np.nan, 95.0, np.inf, -np.inf])
    clean = np.array([5.0, 95.0])
    assert population_stability_index(hundred, live) == population_stability_index(hundred, clean)
    assert ks_distance(hundred, live) == ks_distance(hundred, clean)
    drift = feature_drift("x", hundred, live)
    assert drift.rows == 2
    assert drift.live_mean == 50.0  # (5 + 95) / 2
    assert drift.train_mean == 50.5


def test_all_nan_raises(hundred: ColumnSummary) -> None:
    all_nan = np.full(4, np.nan)
    with pytest.raises(ValueError, match="no finite values"):
        summarize_column(all_nan)
    with pytest.raises(ValueError, match="no finite values"):
        population_stability_index(hundred, all_nan)
    with pytest.raises(ValueError, match="no finite values"):
        ks_distance(hundred, all_nan)
    with pytest.raises(ValueError, match="no finite values"):
        feature_drift("x", hundred, np.array([np.inf, -np.inf]))


def test_feature_drift_collects_both_measures(hundred: ColumnSummary) -> None:
    live = np.arange(11, 111, dtype=np.float64)
    drift = feature_drift("age", hundred, live)
    assert drift.feature == "age"
    assert drift.psi == population_stability_index(hundred, live)
    # F_train(x) = (x - 1) / 99 on [1, 100] (quantiles 1 + 0.99 k at level k / 100). Just
    # below the i-th live point 10 + i (i <= 90), F_live = (i - 1) / 100 and F_train =
    # (9 + i) / 99: gap (999 + i) / 9900, largest at i = 90 (x = 100-): 1089 / 9900 = 0.11.
    # Past 100, F_train = 1 and F_live(x-) >= 0.90, so nothing larger (at x the gap shrinks).
    assert drift.ks == pytest.approx(0.11, abs=1e-12)
    assert drift.live_mean == 60.5  # (11 + 110) / 2
    assert drift.rows == 100


def test_summary_round_trips_through_json(
    hundred: ColumnSummary, zero_one: ColumnSummary, uniform: ColumnSummary
) -> None:
    for summary in (hundred, zero_one, uniform):
        assert ColumnSummary.model_validate_json(summary.model_dump_json()) == summary


def test_summary_is_frozen_and_checks_its_shape(hundred: ColumnSummary) -> None:
    with pytest.raises(ValidationError):
        hundred.mean = 0.0  # type: ignore[misc]
    broken = hundred.model_dump() | {"quantiles": [1.0, 2.0]}
    with pytest.raises(ValidationError, match="101 quantiles"):
        ColumnSummary.model_validate(broken)


def _summary_by_full_sort(values: np.ndarray) -> dict[str, object]:
    """The summary as it was computed before partitioning: every step on the sorted column."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    ordered = np.sort(flat[np.isfinite(flat)])
    levels = np.arange(SUMMARY_QUANTILES) / (SUMMARY_QUANTILES - 1)
    candidates = np.unique(np.quantile(ordered, np.arange(1, 10) / 10))
    at_or_below = np.searchsorted(ordered, candidates, side="right")
    edges: list[float] = []
    below_last_kept = 0
    for edge, count in zip(candidates.tolist(), at_or_below.tolist(), strict=True):
        if below_last_kept < count < ordered.size:
            edges.append(edge)
            below_last_kept = count
    bins = np.searchsorted(np.asarray(edges), ordered, side="left")
    fractions = np.bincount(bins, minlength=len(edges) + 1) / ordered.size
    return {
        "n": int(ordered.size),
        "mean": float(ordered.mean()),
        "std": float(ordered.std()),
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
        "quantiles": np.maximum.accumulate(np.quantile(ordered, levels)).tolist(),
        "bin_edges": edges,
        "bin_fractions": fractions.tolist(),
    }


_RNG = np.random.default_rng(20240611)
# Rounded normals give long runs of ties; NaN and +-inf are scattered through them.
_TIED_WITH_NON_FINITE = np.round(_RNG.normal(size=50_000), 1)
_TIED_WITH_NON_FINITE[_RNG.choice(50_000, size=3_000, replace=False)] = _RNG.choice(
    [np.nan, np.inf, -np.inf], size=3_000
)


@pytest.mark.parametrize(
    "values",
    [
        _RNG.normal(loc=3.0, scale=2.0, size=200_000),
        _RNG.permutation(np.concatenate([np.zeros(70_000), np.ones(30_000)])),
        _TIED_WITH_NON_FINITE,
        np.full(1_000, -2.5),
    ],
    ids=["normal", "discrete_70_30", "ties_nan_inf", "constant"],
)
def test_summary_without_sort_equals_full_sort(values: np.ndarray) -> None:
    expected = _summary_by_full_sort(values)
    summary = summarize_column(values)
    # Order statistics are exact either way: bit-identical, not approximately equal.
    assert summary.quantiles == expected["quantiles"]
    assert summary.bin_edges == expected["bin_edges"]
    assert summary.bin_fractions == expected["bin_fractions"]
    assert (summary.n, summary.min, summary.max) == (
        expected["n"],
        expected["min"],
        expected["max"],
    )
    # Summation order differs (sorted vs stored order), so the moments agree to rounding.
    assert summary.mean == pytest.approx(expected["mean"], rel=1e-12, abs=1e-300)
    assert summary.std == pytest.approx(expected["std"], rel=1e-12, abs=1e-300)
