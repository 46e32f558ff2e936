"""The champion/challenger rule, as a pure function."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regflow.registry import decide_promotion
from regflow.schemas.model_card import ColumnSpec, Signature

SIG = Signature(features=[ColumnSpec(name="x")], target=ColumnSpec(name="y"))


def decide(challenger, champion=None, *, champion_version=1, signature=SIG, **kw):
    return decide_promotion(
        challenger_version=2,
        challenger_metrics=challenger,
        challenger_signature=SIG,
        champion_version=champion_version if champion is not None else None,
        champion_metrics=champion,
        champion_signature=signature if champion is not None else None,
        **kw,
    )


def test_no_champion_promotes_above_the_floor():
    d = decide({"mse": 1.0, "r2": 0.5})
    assert d.promote and d.rule == "no_champion" and d.champion_version is None
    d = decide({"mse": 1.0, "r2": 0.5}, min_r2=0.6)
    assert not d.promote and "below" in d.reason
    assert not decide({"mse": 1.0, "r2": -0.1}).promote  # default floor 0


def test_lower_mse_wins_and_a_tie_does_not():
    assert decide({"mse": 0.9, "r2": 0.8}, {"mse": 1.0, "r2": 0.7}).promote
    tie = decide({"mse": 1.0, "r2": 0.7}, {"mse": 1.0, "r2": 0.7})
    assert not tie.promote and tie.rule == "tie" and "within float rounding" in tie.reason
    # The case: a perfect fit retrained on the same rows (mse=0 against mse=0).
    assert decide({"mse": 0.0, "r2": 1.0}, {"mse": 0.0, "r2": 1.0}).rule == "tie"
    # A difference of float rounding (1e-12 relative) is a tie; 1e-6 relative is not.
    assert decide({"mse": 1.0 - 1e-12, "r2": 0.7}, {"mse": 1.0, "r2": 0.7}).rule == "tie"
    assert decide({"mse": 1.0 - 1e-6, "r2": 0.7}, {"mse": 1.0, "r2": 0.7}).promote
    # Near zero, "rounding" is measured against the target's variance.
    near_zero = decide({"mse": 1e-20, "r2": 1.0}, {"mse": 3e-20, "r2": 1.0}, target_variance=4.0)
    assert near_zero.rule == "tie"
    assert decide({"mse": 1e-20, "r2": 1.0}, {"mse": 3e-20, "r2": 1.0}).promote
    lose = decide({"mse": 1.1, "r2": 0.6}, {"mse": 1.0, "r2": 0.7})
    assert not lose.promote and lose.rule == "mse_improvement"
    assert lose.champion_metrics == {"mse": 1.0, "r2": 0.7}


def test_an_unverified_champion_is_never_replaced_automatically():
    d = decide_promotion(
        challenger_version=2,
        challenger_metrics={"mse": 0.1, "r2": 0.99},
        challenger_signature=SIG,
        champion_version=1,
        champion_metrics=None,
        champion_signature=None,
        champion_unverified="file_changed: plots/loss.png",
    )
    assert not d.promote and d.rule == "champion_unverified"
    assert "failed verification (file_changed: plots/loss.png)" in d.reason


def test_min_improvement_demands_a_margin():
    champ = {"mse": 1.0, "r2": 0.7}
    assert not decide({"mse": 0.95, "r2": 0.7}, champ, min_improvement=0.1).promote
    d = decide({"mse": 0.9, "r2": 0.7}, champ, min_improvement=0.1)
    assert d.promote and d.mse_threshold == pytest.approx(0.9)


@pytest.mark.parametrize(
    "other",
    [
        Signature(features=[ColumnSpec(name="z")], target=ColumnSpec(name="y")),
        Signature(features=[ColumnSpec(name="x")], target=ColumnSpec(name="t")),
        Signature(features=[ColumnSpec(name="x", dtype="int64")], target=ColumnSpec(name="y")),
        {"features": [{"name": "x"}, {"name": "w"}], "target": {"name": "y"}},
    ],
)
def test_other_signature_never_promotes(other):
    d = decide({"mse": 0.0, "r2": 1.0}, {"mse": 5.0, "r2": 0.1}, signature=other)
    assert not d.promote and d.rule == "signature_mismatch"


def test_feature_order_is_not_a_difference():
    a = Signature(
        features=[ColumnSpec(name="a"), ColumnSpec(name="b")], target=ColumnSpec(name="y")
    )
    b = Signature(
        features=[ColumnSpec(name="b"), ColumnSpec(name="a")], target=ColumnSpec(name="y")
    )
    d = decide_promotion(
        challenger_version=2,
        challenger_metrics={"mse": 1.0, "r2": 0.5},
        challenger_signature=a,
        champion_version=1,
        champion_metrics={"mse": 2.0, "r2": 0.4},
        champion_signature=b,
    )
    assert d.promote


def test_edge_cases():
    assert decide({"mse": 1.0, "r2": 0.5}, {"mse": 1.0, "r2": 0.5}, champion_version=2).rule == (
        "already_champion"
    )
    assert not decide({"mse": math.nan, "r2": math.nan}).promote
    assert not decide({"mse": math.nan, "r2": 0.5}, {"mse": 1.0, "r2": 0.5}).promote
    with pytest.raises(ValueError, match="mse"):
        decide({"r2": 0.5})
    with pytest.raises(ValueError, match="champion_metrics"):
        decide_promotion(
            challenger_version=2,
            challenger_metrics={"mse": 1.0, "r2": 0.5},
            challenger_signature=SIG,
            champion_version=1,
            champion_metrics=None,
            champion_signature=SIG,
        )
    with pytest.raises(ValueError, match="min_improvement"):
        decide({"mse": 1.0, "r2": 0.5}, min_improvement=1.0)


finite = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


@given(finite, finite, st.floats(min_value=0.0, max_value=0.99))
def test_rule_matches_its_definition(challenger_mse, champion_mse, margin):
    d = decide(
        {"mse": challenger_mse, "r2": 0.5},
        {"mse": champion_mse, "r2": 0.5},
        min_improvement=margin,
    )
    tie = math.isclose(challenger_mse, champion_mse, rel_tol=1e-9)
    assert d.promote == (challenger_mse <= champion_mse * (1 - margin) and not tie)
    assert (d.rule == "tie") == tie
    assert d.model_dump()["challenger_metrics"]["mse"] == challenger_mse
