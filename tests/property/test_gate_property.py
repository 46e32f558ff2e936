"""The gate's report against numpy on random well-conditioned data.

tests/unit/test_gate.py already checks each feature's r against numpy.corrcoef and the
least-squares coefficients against numpy.linalg.lstsq (with an intercept). This adds what the
gate decides on: the multiple correlation R from lstsq's residuals, with and without an
intercept (uncentred R² then), and its F test and each r's t test against scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from regflow.tasks.gate import correlation_gate

RTOL = 1e-10
P_RTOL = 1e-6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=12, max_value=300),
    d=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    scale=st.floats(min_value=1e-3, max_value=1e3),
    shift=st.floats(min_value=-10.0, max_value=10.0),
    noise=st.floats(min_value=0.05, max_value=3.0),
    fit_intercept=st.booleans(),
)
def test_gate_statistics_match_numpy_and_scipy(
    n: int, d: int, seed: int, scale: float, shift: float, noise: float, fit_intercept: bool
) -> None:
    rng = np.random.default_rng(seed)
    # Independent columns whose mean is at most 10 spreads from 0: well conditioned (a mean
    # 1e5 spreads away costs numpy's own corrcoef 5 digits, and the reference is numpy).
    x = rng.normal(size=(n, d)) * scale + shift * scale
    y = x @ rng.normal(size=d) + rng.normal(size=n) * noise * scale
    columns = [f"x{j}" for j in range(d)]
    frame = pd.DataFrame(x, columns=columns).assign(y=y)
    report = correlation_gate(frame, columns, "y", fit_intercept=fit_intercept)

    design = np.column_stack([np.ones(n), x]) if fit_intercept else x
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    sse = float(np.sum((y - design @ coef) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2)) if fit_intercept else float(y @ y)
    r2 = 1.0 - sse / sst
    assert report.multiple_r == pytest.approx(np.sqrt(r2), rel=RTOL)

    # Tail probabilities amplify the last digits of F (p ~ 1e-40 moves ~1e-8 relative for a
    # 1e-12 change in the sum of squares): 1e-6 relative still pins the distribution down.
    df1, df2 = d, n - d - (1 if fit_intercept else 0)
    f = ((sst - sse) / df1) / (sse / df2)
    expected_p = float(stats.f.sf(f, df1, df2))
    assert report.multiple_r_p_value == pytest.approx(expected_p, rel=P_RTOL, abs=1e-300)

    for j, item in enumerate(report.features):
        r = float(np.corrcoef(x[:, j], y)[0, 1])
        assert item.r == pytest.approx(r, rel=RTOL, abs=1e-12)
        t = r * np.sqrt((n - 2) / (1.0 - r * r))
        expected = 2 * stats.t.sf(abs(t), n - 2)
        assert item.p_value == pytest.approx(expected, rel=P_RTOL, abs=1e-300)
    decided = report.multiple_r if report.statistic == "R" else abs(report.features[0].r)
    assert report.value == decided
