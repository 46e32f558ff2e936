"""Partition-wise statistics: merged sums over uneven partitions equal the one-table results.

Data are cut into 40 partitions of uneven length (one of a single row, one empty); each partition
goes through the per-partition functions on its own (as a Dask worker would, after a pickle
round trip) and the client merges in a pairwise tree.
"""

from __future__ import annotations

import itertools
import json
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pytest

from regflow.schemas.results import GateReport
from regflow.stats import moment_sweeps as sweeps
from regflow.stats import partition_qr as pqr
from regflow.stats.correlation import spearman_sampled
from regflow.stats.fit_summary import (
    FitSummary,
    provisional_summary,
    summarise_analysis,
    summary_from_qr,
    summary_from_sweeps,
)
from regflow.stats.least_squares import analyse_least_squares
from regflow.stats.metrics import MetricSums, split_metrics
from regflow.tasks.gate import (
    SPEARMAN_MAX_ROWS,
    SPEARMAN_SEED,
    correlation_gate,
    gate_from_partitions,
    rows_needed,
)

NIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nist"
T = TypeVar("T")


def cuts(n: int, parts: int, seed: int) -> list[tuple[int, int]]:
    """parts uneven row ranges covering 0:n, one of them a single row and one empty."""
    rng = np.random.default_rng(seed)
    inner = np.sort(rng.choice(np.arange(2, n - 1), size=parts - 3, replace=False))
    bounds = [0, 1, 1, *inner.tolist(), n]  # [0, 1): one row; [1, 1): empty
    return list(itertools.pairwise(bounds))


def tree(items: list[T], merge: Callable[[T, T], T]) -> T:
    while len(items) > 1:
        pairs = [merge(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        items = pairs + items[len(items) - len(items) % 2 :]
    return items[0]


def shipped(value: T) -> T:
    """What a Dask worker sends back: a pickle round trip."""
    return pickle.loads(pickle.dumps(value))


class Partitioned:
    """Columns [X, y] cut into partitions, and every step of both routes over them."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        parts: int = 40,
        seed: int = 0,
        ranges: list[tuple[int, int]] | None = None,
    ) -> None:
        self.x, self.y = x, y
        self.ranges = ranges or cuts(y.shape[0], parts, seed)

    def data(self, start: int, stop: int) -> sweeps.Data:
        columns = [np.ascontiguousarray(self.x[start:stop, j]) for j in range(self.x.shape[1])]
        return sweeps.Data(columns, self.y[start:stop].copy())

    def moments(self) -> sweeps.Moments:
        parts = [shipped(sweeps.partition_moments(self.data(*r))) for r in self.ranges]
        return tree(parts, sweeps.Moments.merged)

    def residuals(self, fit: sweeps.Solution) -> sweeps.Residuals:
        parts = [
            shipped(
                sweeps.partition_residuals(self.data(a, b), fit, diagnostics=True, row_offset=a)
            )
            for a, b in self.ranges
        ]
        return tree(parts, sweeps.Residuals.merged)

    def qr_summary(self, moments: sweeps.Moments, fit_intercept: bool = True) -> FitSummary:
        factors = [
            shipped(pqr.partition_r(self.data(*r), moments, fit_intercept=fit_intercept))
            for r in self.ranges
        ]
        solution = pqr.qr_solution(
            pqr.merge_r_factors(factors), moments, fit_intercept=fit_intercept
        )
        sums = [
            shipped(pqr.partition_qr_residuals(self.data(a, b), solution, row_offset=a))
            for a, b in self.ranges
        ]
        return summary_from_qr(solution, tree(sums, pqr.QRResiduals.merged))

    def summary(self, fit_intercept: bool = True) -> tuple[sweeps.Moments, FitSummary]:
        """The coordinator's route choice: moments where they are trustworthy, else QR."""
        moments = self.moments()
        fit = sweeps.solve_moments(moments, fit_intercept=fit_intercept)
        if fit is not None:
            summary = summary_from_sweeps(fit, self.residuals(fit))
            if summary is not None:
                return moments, summary
        return moments, self.qr_summary(moments, fit_intercept)


def columns_of(x: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(x[:, j]) for j in range(x.shape[1])]


def test_cuts_have_a_single_row_and_an_empty_partition() -> None:
    ranges = cuts(20_000, 40, 0)
    lengths = [b - a for a, b in ranges]
    assert len(ranges) == 40 and sum(lengths) == 20_000
    assert 0 in lengths and 1 in lengths and len(set(lengths)) > 10


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("d", [3, 5])
def test_merged_moments_solve_as_one_table(d: int, fit_intercept: bool) -> None:
    rng = np.random.default_rng(d)
    n = 20_000
    x = rng.normal(loc=30.0, scale=rng.uniform(0.5, 5.0, size=d), size=(n, d))
    x[777] += 25.0  # the largest leverage, in the middle of some partition
    y = 1.5 + x @ rng.uniform(-2.0, 2.0, size=d) + rng.normal(scale=2.0, size=n)
    y[12_345] += 60.0  # the largest Cook's distance
    split = Partitioned(x, y, seed=d)
    whole = sweeps.Data(columns_of(x), y)
    expected = sweeps.solve(whole, fit_intercept=fit_intercept)
    merged = split.moments()
    assert merged.count == n
    got = sweeps.solve_moments(merged, fit_intercept=fit_intercept)
    assert expected is not None and got is not None
    np.testing.assert_allclose(got.coef, expected.coef, rtol=1e-12)
    assert got.intercept == pytest.approx(expected.intercept, rel=1e-12, abs=1e-12)
    assert got.condition_number == pytest.approx(expected.condition_number, rel=1e-12)
    np.testing.assert_array_equal(merged.lo, [*x.min(axis=0), y.min()])
    np.testing.assert_array_equal(merged.hi, [*x.max(axis=0), y.max()])

    ours = split.residuals(got)
    theirs = sweeps.residuals(whole, expected, diagnostics=True)
    assert ours.sse == pytest.approx(theirs.sse, rel=1e-12)
    for name in ("q_sum", "q_sq", "q_e"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-10)
    np.testing.assert_allclose(ours.x_e, theirs.x_e, rtol=1e-8, atol=1e-9 * math.sqrt(theirs.sse))
    assert ours.leverage.row == theirs.leverage.row
    assert ours.leverage.value == pytest.approx(theirs.leverage.value, rel=1e-12)
    assert ours.cooks.row == theirs.cooks.row == 12_345
    if fit_intercept:  # through the origin, far from it, another row leads
        assert ours.leverage.row == 777
    assert ours.cooks.value == pytest.approx(theirs.cooks.value, rel=1e-10)


def test_empty_moments_merge_as_identity() -> None:
    part = sweeps.partition_moments(sweeps.Data([np.arange(5.0)], np.arange(5.0) ** 2))
    empty = sweeps.partition_moments(sweeps.Data([np.zeros(0)], np.zeros(0)))
    assert empty.count == 0
    for merged in (part.merged(empty), empty.merged(part)):
        assert merged.count == 5
        np.testing.assert_array_equal(merged.cross, part.cross)
        np.testing.assert_array_equal(merged.lo, part.lo)
    assert empty.count == 0  # merged leaves its inputs alone


def same_report(ours: GateReport, theirs: GateReport, rel: float = 1e-10) -> None:
    assert ours.passed == theirs.passed
    assert ours.reason.split(" = ")[0] == theirs.reason.split(" = ")[0]
    assert ours.statistic == theirs.statistic and ours.n_rows == theirs.n_rows
    assert ours.value == pytest.approx(theirs.value, rel=rel)
    assert ours.multiple_r == pytest.approx(theirs.multiple_r, rel=rel)
    assert ours.condition_number == pytest.approx(theirs.condition_number, rel=rel)
    for p, q in (
        (ours.p_value, theirs.p_value),
        (ours.multiple_r_p_value, theirs.multiple_r_p_value),
    ):
        assert p == pytest.approx(q, rel=rel, abs=1e-300)
    for mine, ref in zip(ours.features, theirs.features, strict=True):
        assert mine.r == pytest.approx(ref.r, rel=rel)
        assert mine.p_value == pytest.approx(ref.p_value, rel=rel, abs=1e-300)
        assert mine.spearman == ref.spearman
    assert [(w.kind, w.feature) for w in ours.warnings] == [
        (w.kind, w.feature) for w in theirs.warnings
    ]
    for mine_w, ref_w in zip(ours.warnings, theirs.warnings, strict=True):
        assert mine_w.value == pytest.approx(ref_w.value, rel=1e-8)


def gate_both_ways(
    x: np.ndarray, y: np.ndarray, *, fit_intercept: bool = True
) -> tuple[GateReport, GateReport, FitSummary]:
    features = [f"x{j}" for j in range(x.shape[1])]
    frame = pd.DataFrame({**{name: x[:, j] for j, name in enumerate(features)}, "y": y})
    local = correlation_gate(frame, features, "y", fit_intercept=fit_intercept)
    moments, summary = Partitioned(x, y).summary(fit_intercept)
    # The coordinator samples rows for Spearman; here the sample is the whole (short) table.
    spearman, rows = spearman_sampled(columns_of(x), y, SPEARMAN_MAX_ROWS, SPEARMAN_SEED)
    merged = gate_from_partitions(
        shipped(moments), summary, spearman, rows, features, "y", fit_intercept=fit_intercept
    )
    return merged, local, summary


def case(name: str, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    if name == "strong":
        x = rng.normal(loc=[5.0, -3.0, 100.0], scale=[1.0, 2.0, 10.0], size=(n, 3))
        return x, x @ [0.5, -0.2, 0.03] + rng.normal(scale=0.5, size=n)
    if name == "weak":
        x = rng.normal(size=(n, 4))
        return x, 0.01 * x[:, 0] + rng.normal(size=n)
    if name == "curved":
        x = rng.uniform(-1.0, 3.0, size=(n, 1))
        return x, x[:, 0] ** 2 + rng.normal(scale=0.3, size=n)
    if name == "outlier":
        x = rng.normal(size=(n, 3))
        x[15_000] = [400.0, -300.0, 250.0]  # leverage close to 1, and far off the plane
        y = x @ [1.0, 0.5, -0.5] + rng.normal(size=n)
        y[15_000] += 500.0
        return x, y
    if name in ("ill_conditioned", "collinear"):
        # Condition numbers about 3e5 and 3e9: beyond the moment route, and beyond 1e7.
        x = rng.normal(loc=1000.0, size=(n, 3))
        noise = 1e-5 if name == "ill_conditioned" else 1e-9
        x[:, 2] = x[:, 0] + x[:, 1] + rng.normal(scale=noise, size=n)
        return x, x[:, 0] - x[:, 1] + rng.normal(size=n)
    if name == "constant_column":
        x = rng.normal(size=(n, 3))
        x[:, 1] = 2.5
        return x, x[:, 0] + rng.normal(size=n)
    raise AssertionError(name)


@pytest.mark.parametrize(
    ("name", "passed", "kinds", "method"),
    [
        ("strong", True, set(), "moments"),
        ("weak", False, set(), "moments"),
        ("curved", True, {"curvature"}, "moments"),
        ("outlier", True, {"influential_point", "curvature", "rank_disagreement"}, "moments"),
        ("ill_conditioned", True, set(), "qr"),
        ("collinear", True, {"ill_conditioned"}, "qr"),
        ("constant_column", True, {"ill_conditioned"}, "qr"),
    ],
)
def test_gate_from_partitions_matches_the_local_gate(
    name: str, passed: bool, kinds: set[str], method: str
) -> None:
    x, y = case(name)
    merged, local, summary = gate_both_ways(x, y)
    assert summary.method == method
    assert local.passed is passed and {w.kind for w in local.warnings} == kinds
    # Both routes are accurate to about eps * condition number; below 1e6 that is under 1e-10.
    condition = local.condition_number
    same_report(merged, local, rel=1e-10 if condition < 1e6 else 1e-14 * condition)
    if name == "outlier":
        influential = [w.message for w in merged.warnings if w.kind == "influential_point"]
        assert {m.split(" has ")[0] for m in influential} == {"row 15001"}  # global, 1-based
        assert influential == [w.message for w in local.warnings if w.kind == "influential_point"]


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_qr_route_summary_equals_the_local_analysis(fit_intercept: bool) -> None:
    x, y = case("ill_conditioned")
    split = Partitioned(x, y)
    moments = split.moments()
    assert sweeps.solve_moments(moments, fit_intercept=fit_intercept) is None
    ours = split.qr_summary(moments, fit_intercept)
    theirs = summarise_analysis(analyse_least_squares(x, y, fit_intercept=fit_intercept))
    # Leverages carry errors of about eps * condition number (3e5 centred, 4e8 through the
    # origin) in both routes.
    assert_same_qr_summary(ours, theirs, rel=max(1e-9, 1e-14 * theirs.condition_number))


def assert_same_qr_summary(ours: FitSummary, theirs: FitSummary, rel: float) -> None:
    assert ours.rank == theirs.rank and ours.n == theirs.n
    for name in ("condition_number", "sse", "sst", "r2"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=rel), name
    np.testing.assert_allclose(ours.correlations, theirs.correlations, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.constant_columns, theirs.constant_columns)
    assert ours.max_leverage.row == theirs.max_leverage.row
    assert ours.max_leverage.value == pytest.approx(theirs.max_leverage.value, rel=rel)
    assert ours.max_cooks_distance is not None and theirs.max_cooks_distance is not None
    assert ours.max_cooks_distance.row == theirs.max_cooks_distance.row
    assert ours.max_cooks_distance.value == pytest.approx(
        theirs.max_cooks_distance.value, rel=1e3 * rel
    )
    assert ours.curvature is not None and theirs.curvature is not None
    assert ours.curvature.df_resid == theirs.curvature.df_resid
    assert ours.curvature.ss_reduction == pytest.approx(
        theirs.curvature.ss_reduction, rel=1e3 * rel, abs=1e-9 * theirs.sse
    )


def nist(name: str) -> tuple[np.ndarray, np.ndarray]:
    if not (NIST / "certified.json").is_file():
        pytest.skip(f"NIST StRD reference data not found at {NIST.resolve()}")
    json.loads((NIST / "certified.json").read_text())[name]  # the file is the one we expect
    frame = pd.read_csv(NIST / f"{name}.csv")
    return frame.drop(columns="y").to_numpy(dtype=np.float64), frame["y"].to_numpy(np.float64)


@pytest.mark.parametrize(("name", "fit_intercept"), [("Longley", True), ("NoInt1", False)])
def test_nist_in_chunks_equals_the_local_qr_analysis(name: str, fit_intercept: bool) -> None:
    x, y = nist(name)
    split = Partitioned(x, y, parts=5, seed=1)
    moments = split.moments()
    ours = split.qr_summary(moments, fit_intercept)
    local = analyse_least_squares(x, y, fit_intercept=fit_intercept)
    theirs = summarise_analysis(local)
    assert_same_qr_summary_without_curvature(ours, theirs)
    # The coefficients themselves, through the solution the summary came from.
    factors = [
        pqr.partition_r(split.data(*r), moments, fit_intercept=fit_intercept) for r in split.ranges
    ]
    solution = pqr.qr_solution(pqr.merge_r_factors(factors), moments, fit_intercept=fit_intercept)
    np.testing.assert_allclose(solution.coef, local.fit.coef, rtol=1e-9)
    assert solution.intercept == pytest.approx(local.fit.intercept, rel=1e-9, abs=1e-12)


def assert_same_qr_summary_without_curvature(ours: FitSummary, theirs: FitSummary) -> None:
    assert ours.rank == theirs.rank
    for name in ("condition_number", "sse", "sst", "r2"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-9), name
    np.testing.assert_allclose(ours.correlations, theirs.correlations, rtol=1e-9)
    assert ours.max_leverage.row == theirs.max_leverage.row
    assert ours.max_leverage.value == pytest.approx(theirs.max_leverage.value, rel=1e-9)


def test_too_few_rows_stop_from_moments() -> None:
    x = np.array([[1.0, 2.0], [2.0, 0.5], [4.0, 1.0]])
    y = np.array([1.0, 3.0, 2.0])
    assert rows_needed(2, True) == 4
    features = ["a", "b"]
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y})
    local = correlation_gate(frame, features, "y")
    moments = Partitioned(x, y, ranges=[(0, 1), (1, 1), (1, 3)]).moments()
    spearman, rows = spearman_sampled(columns_of(x), y, SPEARMAN_MAX_ROWS, SPEARMAN_SEED)
    merged = gate_from_partitions(moments, None, spearman, rows, features, "y")
    assert merged.reason == local.reason and not merged.passed
    for mine, ref in zip(merged.features, local.features, strict=True):
        assert mine.r == pytest.approx(ref.r, rel=1e-12)


def test_constant_target_gives_the_same_reason() -> None:
    x = np.random.default_rng(3).normal(size=(500, 2))
    y = np.full(500, 7.25)
    merged, local, _ = gate_both_ways(x, y)
    assert not merged.passed and merged.reason == local.reason
    assert "every row is 7.25" in merged.reason


def test_non_finite_values_are_named() -> None:
    x = np.random.default_rng(4).normal(size=(100, 2))
    x[50, 1] = np.nan
    moments = Partitioned(x, x[:, 0].copy(), parts=4, seed=3).moments()
    with pytest.raises(ValueError, match="feature 'b' has NaN or infinite values"):
        gate_from_partitions(moments, None, np.zeros(2), 100, ["a", "b"], "y")


def test_metric_sums_merge_to_split_metrics() -> None:
    rng = np.random.default_rng(6)
    n = 20_000
    y = 1e3 + rng.normal(size=n)  # far from 0: the centred sum must not cancel
    predicted = y + rng.normal(scale=0.3, size=n)
    parts = [shipped(MetricSums.of_arrays(y[a:b], predicted[a:b])) for a, b in cuts(n, 40, 5)]
    ours = tree(parts, MetricSums.merge).to_split_metrics("holdout")
    theirs = split_metrics("holdout", y, predicted)
    assert ours.split == theirs.split and ours.n == theirs.n == n
    for name in ("mse", "rmse", "mae", "r2"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-12), name
    empty = MetricSums.of_arrays(np.zeros(0), np.zeros(0))
    assert empty.merge(parts[5]) == parts[5] and parts[5].merge(empty) == parts[5]


def test_the_provisional_summary_is_the_swept_ones_decision() -> None:
    """The sse from the moments alone equals the residual sweep's where it is offered (so a
    decision on it is the final one), and is withheld where the fit is too good for it."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, -3.0]
    y = x @ [1.0, -0.2, 4.0] + 2.0 + rng.normal(0, 1.0, 5000)
    data = sweeps.Data([x[:, j] for j in range(3)], y)
    fit = sweeps.solve(data)
    assert fit is not None
    early = provisional_summary(fit)
    swept = summary_from_sweeps(fit, sweeps.residuals(data, fit, diagnostics=True))
    assert early is not None and swept is not None
    assert abs(early.sse - swept.sse) <= 1e-10 * swept.sse
    assert abs(early.r2 - swept.r2) <= 1e-12
    assert early.curvature is None and early.max_cooks_distance is None
    exact = sweeps.Data([x[:, j] for j in range(3)], x @ [1.0, -0.2, 4.0] + 1e-7 * y)
    near_perfect = sweeps.solve(exact)
    assert near_perfect is not None and provisional_summary(near_perfect) is None
