"""The holdout: a function of each row's position and the seed, the same in any partition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from regflow.stats.splitting import holdout_mask, sample_fraction, sampled_rows, uniform_at
from regflow.tasks.evaluate import make_split

MASK64 = (1 << 64) - 1


def _splitmix64_reference(seed: int, position: int) -> float:
    """The rule in plain Python integers, written from the SplitMix64 paper, not the module."""

    def mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    golden = 0x9E3779B97F4A7C15
    key = mix((seed + golden) & MASK64)
    return (mix((key + (position + 1) * golden) & MASK64) >> 11) / 2.0**53


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 - 1])
def test_each_draw_is_the_splitmix64_output_of_seed_and_position(seed: int) -> None:
    positions = np.array([0, 1, 2, 1000, 2**40, 2**62])
    expected = [_splitmix64_reference(seed, int(p)) for p in positions]
    assert uniform_at(positions, seed).tolist() == expected


def test_the_draws_of_seed_0_stay_what_they_are() -> None:
    # Pinned literals: a change here changes every run's holdout (a CHANGELOG entry).
    draws = [float.fromhex(h) for h in ("0x1.4e0dba5e9a32fp-1", "0x1.6705460be8829p-1")]
    assert uniform_at(np.arange(2), 0).tolist() == draws
    assert np.flatnonzero(holdout_mask(np.arange(40), 0, 0.2)).tolist() == [
        5,
        11,
        12,
        19,
        26,
        38,
        39,
    ]


def test_partitions_hold_out_the_same_rows_as_the_whole() -> None:
    n = 10_007
    whole = holdout_mask(np.arange(n), 7, 0.25)
    cuts = [0, 1, 999, 1000, 5003, 9999, n]
    parts = [holdout_mask(np.arange(a, b), 7, 0.25) for a, b in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # Any order of positions: the answer is per position.
    order = np.random.default_rng(0).permutation(n)
    np.testing.assert_array_equal(holdout_mask(order, 7, 0.25), whole[order])


def test_the_share_held_out_is_about_the_fraction_and_seeds_differ() -> None:
    n, fraction = 200_000, 0.2
    first = holdout_mask(np.arange(n), 0, fraction)
    second = holdout_mask(np.arange(n), 1, fraction)
    sigma = (n * fraction * (1 - fraction)) ** 0.5
    for mask in (first, second):
        assert abs(int(mask.sum()) - n * fraction) < 5 * sigma
    # Independent seeds: the overlap is about fraction^2, not fraction (a shifted stream).
    overlap = int((first & second).sum())
    assert abs(overlap - n * fraction**2) < 5 * (n * fraction**2) ** 0.5


def test_the_mask_is_each_draw_below_the_fraction_across_its_blocks() -> None:
    """holdout_mask works a block of rows at a time: the same answer as the whole draw."""
    positions = np.arange(5, 200_005, dtype=np.int64)[::-1]  # several blocks, any order
    expected = uniform_at(positions, 9) < 0.3
    assert np.array_equal(holdout_mask(positions, 9, 0.3), expected)
    assert holdout_mask(np.zeros(0, dtype=np.int64), 9, 0.3).shape == (0,)


def test_negative_positions_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        holdout_mask(np.array([3, -1]), 0, 0.2)


def test_make_split_reports_the_count_it_actually_held_out() -> None:
    plan = make_split(1000, 0.2, 3)
    mask = holdout_mask(np.arange(1000), 3, 0.2)
    assert plan.holdout_rows is not None and plan.train_rows is not None
    np.testing.assert_array_equal(plan.holdout_rows, np.flatnonzero(mask))
    np.testing.assert_array_equal(plan.train_rows, np.flatnonzero(~mask))
    held = int(mask.sum())
    assert f"holdout: {held} of 1000 rows ({held / 1000:.0%}; about 20% asked, seed 3)" in (
        plan.note
    )


def test_make_split_on_a_slice_matches_the_whole_table() -> None:
    whole = make_split(500, 0.3, 5)
    part = make_split(200, 0.3, 5, positions=np.arange(150, 350))
    assert whole.holdout_rows is not None and part.holdout_rows is not None
    in_slice = whole.holdout_rows[(whole.holdout_rows >= 150) & (whole.holdout_rows < 350)]
    np.testing.assert_array_equal(part.holdout_rows + 150, in_slice)
    with pytest.raises(ValueError, match="positions"):
        make_split(200, 0.3, 5, positions=np.arange(10))


def test_no_holdout_when_the_draws_pick_no_row() -> None:
    assert not holdout_mask(np.arange(30), 0, 0.001).any()  # the case under test
    plan = make_split(30, 0.001, 0)
    assert plan.holdout_rows is None and plan.train_rows is None
    assert "picked no row: no holdout, trained and evaluated on all rows" in plan.note


def test_no_holdout_when_fewer_than_3_rows_are_left_to_train() -> None:
    kept = int((~holdout_mask(np.arange(50), 0, 0.99)).sum())
    assert kept < 3  # the case under test
    plan = make_split(50, 0.99, 0)
    assert plan.holdout_rows is None and plan.fit_split == "all"
    assert f"left {kept} rows (< 3) to train on: no holdout" in plan.note


def test_small_tables_and_no_holdout_requested_keep_their_notes() -> None:
    assert "only 29 rows (< 30)" in make_split(29, 0.2, 0).note
    assert make_split(100, 0.0, 0).note.startswith("no holdout requested")


def test_the_sample_is_every_row_up_to_its_size() -> None:
    train = np.array([0, 2, 3, 7])
    assert sampled_rows(np.arange(8), sample_fraction(8, 100)) is None
    assert sampled_rows(np.arange(8), sample_fraction(8, 8), among=train) is train


def test_the_sample_is_drawn_by_position_in_any_partitioning() -> None:
    """Drawn from the whole table, or file by file with each file's first position: the
    same rows, about max_rows of them, and only rows of `among`."""
    n, max_rows = 200_000, 20_000
    fraction = sample_fraction(n, max_rows)
    whole = sampled_rows(np.arange(n), fraction)
    assert whole is not None and abs(len(whole) - max_rows) < 5 * np.sqrt(max_rows)
    cuts = [0, 13_001, 90_000, 150_500, n]
    pieces = [
        first + rows
        for first, stop in itertools.pairwise(cuts)
        if (rows := sampled_rows(np.arange(first, stop), fraction)) is not None
    ]
    assert np.array_equal(np.concatenate(pieces), whole)
    among = np.flatnonzero(np.arange(n) % 3 != 0)
    subset = sampled_rows(np.arange(n), fraction, among=among)
    assert subset is not None and np.array_equal(subset, np.intersect1d(whole, among))
