"""regflow.stats.distributions against scipy (tests only) and at the extremes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from regflow.stats.distributions import (
    f_sf,
    r_two_sided_p,
    regularized_beta,
    regularized_gamma_p,
    regularized_gamma_q,
    t_two_sided_p,
)

RTOL = 1e-12
# scipy's own t and F tails are good to ~1e-12 up to about 1e4 degrees of freedom and drift to
# ~1e-9 by 1e8 (mpmath confirms ours there: see test_huge_df_against_mpmath).
SCIPY_LARGE_DF_RTOL = 1e-8


def assert_close(actual: float, expected: float, rtol: float = RTOL) -> None:
    assert math.isfinite(actual)
    assert actual == pytest.approx(expected, rel=rtol, abs=0.0), (actual, expected)


T_VALUES = [1e-3, 0.1, 0.5, 1.0, 1.7, 2.0, 3.0, 5.0, 10.0, 30.0]
DF_VALUES = [1.0, 2.0, 2.5, 3.0, 10.0, 37.0, 100.0, 1e3, 1e5, 1e6, 1e7]


@pytest.mark.parametrize("df", DF_VALUES)
@pytest.mark.parametrize("t", T_VALUES)
def test_t_two_sided_p_matches_scipy(t: float, df: float) -> None:
    expected = 2.0 * stats.t.sf(t, df)
    if expected < 1e-290:
        pytest.skip("below the normal float64 range")
    assert_close(t_two_sided_p(t, df), expected, RTOL if df <= 1e4 else SCIPY_LARGE_DF_RTOL)
    assert t_two_sided_p(-t, df) == t_two_sided_p(t, df)


@pytest.mark.parametrize("df2", [1.0, 3.0, 8.0, 50.0, 1e3, 1e6, 1e8])
@pytest.mark.parametrize("df1", [1.0, 2.0, 5.0, 10.0, 120.0])
@pytest.mark.parametrize("f", [1e-6, 0.2, 1.0, 1.3, 4.0, 25.0, 1e3])
def test_f_sf_matches_scipy(f: float, df1: float, df2: float) -> None:
    expected = stats.f.sf(f, df1, df2)
    if expected < 1e-290:
        pytest.skip("below the normal float64 range")
    assert_close(f_sf(f, df1, df2), expected, RTOL if df2 <= 1e4 else SCIPY_LARGE_DF_RTOL)


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("t", (2.0, 1e7)),
        ("t", (30.0, 1e7)),
        ("t", (35.0, 1e12)),
        ("t", (1.96, 1e9)),
        ("f", (1.3, 10.0, 1e6)),
        ("f", (4.0, 10.0, 1e8)),
        ("f", (25.0, 10.0, 1e8)),
        ("f", (1.02, 3.0, 1e9)),
    ],
)
def test_huge_df_against_mpmath(kind: str, args: tuple[float, ...]) -> None:
    """Where scipy itself drifts, a 60-digit incomplete beta is the reference."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    if kind == "t":
        t, df = args
        a, b = mp.mpf(df) / 2, mp.mpf("0.5")
        x = mp.mpf(df) / (mp.mpf(df) + mp.mpf(t) ** 2)
        actual = t_two_sided_p(t, df)
    else:
        f, df1, df2 = args
        a, b = mp.mpf(df2) / 2, mp.mpf(df1) / 2
        x = mp.mpf(df2) / (mp.mpf(df2) + mp.mpf(df1) * mp.mpf(f))
        actual = f_sf(f, df1, df2)
    # Both sides of the switch point are computed directly (no 1 - tiny in the reference).
    if x < (a + 1) / (a + b + 2):
        expected = mp.betainc(a, b, 0, x, regularized=True)
    else:
        expected = 1 - mp.betainc(b, a, 0, 1 - x, regularized=True)
    assert_close(actual, float(expected))


@pytest.mark.parametrize(
    ("a", "b"),
    [(0.5, 0.5), (0.5, 3.0), (2.0, 7.5), (20.0, 0.5), (150.0, 150.0), (1e4, 3.0), (3e5, 2e5)],
)
@pytest.mark.parametrize("x", [1e-12, 1e-4, 0.01, 0.3, 0.5, 0.6, 0.9, 0.999, 1 - 1e-9])
def test_regularized_beta_matches_scipy(x: float, a: float, b: float) -> None:
    lower = special.betainc(a, b, x)
    upper = special.betaincc(a, b, x)
    if lower > 1e-300:
        assert_close(regularized_beta(x, a, b), lower, 1e-11)
    if upper > 1e-300:
        assert_close(regularized_beta(x, a, b, upper=True), upper, 1e-11)


@pytest.mark.parametrize("s", [0.5, 1.0, 2.5, 10.0, 400.0])
@pytest.mark.parametrize("ratio", [0.01, 0.5, 0.9, 1.0, 1.2, 3.0])
def test_regularized_gamma_matches_scipy(s: float, ratio: float) -> None:
    z = s * ratio
    assert_close(regularized_gamma_p(s, z), special.gammainc(s, z), 1e-12)
    if special.gammaincc(s, z) > 1e-300:
        assert_close(regularized_gamma_q(s, z), special.gammaincc(s, z), 1e-12)


@settings(max_examples=100, deadline=None)
@given(
    t=st.floats(min_value=1e-6, max_value=60.0),
    df=st.floats(min_value=0.5, max_value=1e5),
)
def test_t_p_property(t: float, df: float) -> None:
    expected = 2.0 * stats.t.sf(t, df)
    if expected > 1e-290:
        assert_close(t_two_sided_p(t, df), expected, 1e-10)


@settings(max_examples=100, deadline=None)
@given(
    f=st.floats(min_value=1e-6, max_value=1e4),
    df1=st.floats(min_value=0.5, max_value=300.0),
    df2=st.floats(min_value=0.5, max_value=1e5),
)
def test_f_sf_property(f: float, df1: float, df2: float) -> None:
    expected = stats.f.sf(f, df1, df2)
    if expected > 1e-290:
        assert_close(f_sf(f, df1, df2), expected, 1e-10)


def test_deep_tails_keep_relative_accuracy() -> None:
    assert_close(t_two_sided_p(40.0, 5.0), 2.0 * stats.t.sf(40.0, 5.0))
    assert_close(t_two_sided_p(35.0, 1e4), 2.0 * stats.t.sf(35.0, 1e4), 1e-11)
    assert_close(f_sf(400.0, 3.0, 30.0), stats.f.sf(400.0, 3.0, 30.0))
    # p close to 1 from a tiny statistic: no cancellation in 1 - x.
    assert_close(1.0 - t_two_sided_p(1e-9, 10.0), 1.0 - 2.0 * stats.t.sf(1e-9, 10.0), 1e-6)


@pytest.mark.filterwarnings("error")
def test_extremes_without_warnings() -> None:
    assert t_two_sided_p(0.0, 5.0) == 1.0
    assert t_two_sided_p(-0.0, 1e12) == 1.0
    assert t_two_sided_p(math.inf, 3.0) == 0.0
    assert t_two_sided_p(-math.inf, 3.0) == 0.0
    assert t_two_sided_p(1e300, 2.0) == 0.0
    assert t_two_sided_p(1e-300, 2.0) == 1.0
    # df = inf is the normal distribution.
    assert_close(t_two_sided_p(2.0, math.inf), math.erfc(2.0 / math.sqrt(2.0)))
    # Huge but finite df: converges to the normal, quickly and without warnings.
    for df in (1e9, 1e15, 1e300):
        assert_close(t_two_sided_p(2.0, df), math.erfc(2.0 / math.sqrt(2.0)), 1e-8)
    assert_close(t_two_sided_p(30.0, 1e18), math.erfc(30.0 / math.sqrt(2.0)), 1e-8)
    assert r_two_sided_p(1.0, 10.0) == 0.0
    assert r_two_sided_p(-1.0, 10.0) == 0.0
    assert r_two_sided_p(0.0, 10.0) == 1.0
    assert f_sf(0.0, 2.0, 5.0) == 1.0
    assert f_sf(math.inf, 2.0, 5.0) == 0.0
    assert f_sf(1e300, 2.0, 5.0) == 0.0
    # df2 = inf: df1 * F is chi-square(df1); df1 = inf: df2 / F is chi-square(df2).
    assert_close(f_sf(2.0, 3.0, math.inf), stats.chi2.sf(6.0, 3.0))
    assert_close(f_sf(2.0, math.inf, 7.0), stats.chi2.cdf(3.5, 7.0))
    assert_close(f_sf(2.0, 3.0, 1e12), stats.chi2.sf(6.0, 3.0), 1e-9)
    assert f_sf(0.5, math.inf, math.inf) == 1.0
    assert f_sf(2.0, math.inf, math.inf) == 0.0
    assert_close(f_sf(1.01, 1e8, 1e8), stats.f.sf(1.01, 1e8, 1e8), 1e-9)
    assert math.isnan(t_two_sided_p(math.nan, 3.0))
    assert math.isnan(f_sf(1.0, math.nan, 3.0))
    assert math.isnan(r_two_sided_p(0.3, math.nan))


def test_r_two_sided_p_agrees_with_t() -> None:
    for r in (0.05, 0.3, -0.7, 0.99, 0.999999):
        for df in (3.0, 48.0, 1e6):
            t = r * math.sqrt(df / ((1.0 - r) * (1.0 + r)))
            assert_close(r_two_sided_p(r, df), t_two_sided_p(t, df), 1e-11)
    # r within ulps of 1: 1 - r^2 taken as (1 - r)(1 + r) keeps the digits.
    r = float(np.nextafter(1.0, 0.0))
    t = r * math.sqrt(8.0 / ((1.0 - r) * (1.0 + r)))
    assert_close(r_two_sided_p(r, 8.0), 2.0 * stats.t.sf(t, 8.0), 1e-9)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="df must be positive"):
        t_two_sided_p(1.0, 0.0)
    with pytest.raises(ValueError, match="df2 must be positive"):
        f_sf(1.0, 2.0, -1.0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        r_two_sided_p(1.5, 3.0)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        regularized_beta(1.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="must be positive"):
        regularized_beta(0.5, 0.0, 1.0)
