"""Tail probabilities of the t and F distributions in float64, without scipy.

Both reduce to the regularized incomplete beta function I_x(a, b). It is evaluated with the
continued fraction (modified Lentz), switching to I_x(a, b) = 1 - I_{1-x}(b, a) past the point
x = (a + 1) / (a + b + 2) where the fraction stops converging quickly. Callers pass x *and*
y = 1 - x computed separately, so that tails near x = 1 keep their relative accuracy instead of
cancelling in 1 - x. The factor x^a y^b / B(a, b) is assembled from Stirling's formula with its
remainder computed separately, so huge a or b (degrees of freedom in the millions or more) do
not lose digits to lgamma cancellation. When one parameter is large and x lies within about
1e-3 of the end it favours (the t and F tests of big data sets), the continued fraction would
lose log10(a y) digits to cancellation; an asymptotic series in incomplete gamma functions
(Watson's lemma) takes over there. Infinite degrees of freedom use the limiting normal and
chi-square laws.

Measured against 60-120 digit mpmath: about 1e-13 relative wherever the result is a normal
float64, for degrees of freedom from 0.5 to 1e12.
"""

from __future__ import annotations

import math

__all__ = [
    "f_sf",
    "r_two_sided_p",
    "regularized_beta",
    "regularized_gamma_p",
    "regularized_gamma_q",
    "t_two_sided_p",
]

_EPS = 2.220446049250313e-16
_TINY = 1e-300  # keeps Lentz's denominators away from zero
_CF_TOL = 1e-15
_MAX_ITER = 200_000  # only both-parameters-huge cases need more than a few hundred
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Where the large-a expansion replaces the continued fraction (see _large_a_pair).
_LARGE_A = 1000.0
_LARGE_A_B_RATIO = 0.01
_LARGE_A_Y = 1e-3
_LARGE_A_TERMS = 60
_SERIES_TOL = 1e-17
# Stirling series coefficients B_2k / (2k (2k - 1)) for k = 1..8.
_STIRLING = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
)


def _stirling_remainder(z: float) -> float:
    """lgamma(z) - ((z - 1/2) log z - z + log(2 pi) / 2), accurate in absolute terms."""
    if z >= 10.0:
        inv = 1.0 / z
        inv2 = inv * inv
        total = 0.0
        for coefficient in reversed(_STIRLING):
            total = total * inv2 + coefficient
        return total * inv
    # Below 10 every term is small, so the direct difference loses nothing that matters.
    return math.lgamma(z) - ((z - 0.5) * math.log(z) - z + _HALF_LOG_2PI)


def _log_part(p: float, q: float, u: float, v: float) -> float:
    """p * log(u (p + q) / p), where v = 1 - u; the factor is near 1 around the mode."""
    shift = (u * q - v * p) / p  # u (p + q) / p - 1, without cancelling
    if abs(shift) < 0.5:
        return p * math.log1p(shift)
    log_u = math.log1p(-v) if v < 0.5 else math.log(u)
    return p * (log_u + math.log1p(q / p))


def _beta_front(a: float, b: float, x: float, y: float) -> float:
    """x^a y^b / B(a, b) with y = 1 - x given separately."""
    exponent = (
        _log_part(a, b, x, y)
        + _log_part(b, a, y, x)
        + _stirling_remainder(a + b)
        - _stirling_remainder(a)
        - _stirling_remainder(b)
    )
    scale = math.sqrt((a / (a + b)) * b / (2.0 * math.pi))
    return scale * math.exp(exponent)


def _beta_fraction(a: float, b: float, x: float, y: float) -> float:
    """Continued fraction of I_x(a, b) * a * B(a, b) / (x^a y^b), modified Lentz."""
    sum_ab = a + b
    c = 1.0
    # 1 - (a + b) x / (a + 1) = (1 + a y - b x) / (a + 1): the second form is accurate when x
    # is near 1 (large a), where the first would cancel down to a few digits.
    d = 1.0 - sum_ab * x / (a + 1.0) if x <= y else (1.0 + a * y - b * x) / (a + 1.0)
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITER + 1):
        m2 = 2.0 * m
        # Even step.
        coefficient = m * (b - m) * x / ((a - 1.0 + m2) * (a + m2))
        d = 1.0 + coefficient * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + coefficient / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        h *= d * c
        # Odd step.
        coefficient = -(a + m) * (sum_ab + m) * x / ((a + m2) * (a + 1.0 + m2))
        d = 1.0 + coefficient * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + coefficient / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < _CF_TOL:
            break
    return h


def _large_a_pair(a: float, b: float, y: float) -> tuple[float, float]:
    """(I_x(a, b), 1 - I_x(a, b)) for large a, moderate b and small y = 1 - x.

    With s = -log(1 - t), 1 - I_x(a, b) = int_0^S (1 - e^-s)^(b-1) e^(-a s) ds / B(a, b) where
    S = -log(x). Expanding ((1 - e^-s) / s)^(b-1) = sum_k c_k s^k gives (Watson's lemma)
        1 - I_x(a, b) = G sum_k c_k (b)_k a^-k P(b + k, a S),  G = Gamma(a+b) / (Gamma(a) a^b),
    and the same sum with Q in place of P for I_x(a, b). The terms fall like (b + k) / (2 pi a),
    so a few dozen give full precision; unlike the continued fraction, nothing here cancels
    when x is within O(1/a) of 1.
    """
    z = -a * math.log1p(-y)
    power = b - 1.0
    # Coefficients of ((1 - e^-s) / s) = sum_j (-s)^j / (j + 1)! and of its power (Miller).
    g = [1.0]
    h = [1.0]
    lower_sum = 0.0
    upper_sum = 0.0
    rising = 1.0  # (b)_k / a^k
    for k in range(_LARGE_A_TERMS):
        if k > 0:
            g.append(-g[-1] / (k + 1))
            h.append(sum(((power + 1.0) * j - k) * g[j] * h[k - j] for j in range(1, k + 1)) / k)
            rising *= (b + k - 1.0) / a
        lower, upper = _gamma_pair(b + k, z)
        lower_term = h[k] * rising * lower
        upper_term = h[k] * rising * upper
        lower_sum += lower_term
        upper_sum += upper_term
        # Later terms are bounded by |c_k (b)_k / a^k| (times P, which falls with k, for the
        # lower sum; Q rises with k towards 1, so the upper sum gets the plain bound).
        weight = abs(h[k] * rising)
        if (
            k > 2
            and weight <= _SERIES_TOL * upper_sum
            and abs(lower_term) <= _SERIES_TOL * lower_sum
        ):
            break
    log_g = (a + b - 0.5) * math.log1p(b / a) - b + _stirling_remainder(a + b)
    log_g -= _stirling_remainder(a)
    scale = math.exp(log_g)
    return min(scale * upper_sum, 1.0), min(scale * lower_sum, 1.0)


def _beta_pair(a: float, b: float, x: float, y: float) -> tuple[float, float]:
    """(I_x(a, b), 1 - I_x(a, b)) with y = 1 - x; each side keeps its relative accuracy."""
    if x <= 0.0:
        return 0.0, 1.0
    if y <= 0.0:
        return 1.0, 0.0
    # Large a (or b, by symmetry) with x within a small distance of 1 (or 0): the continued
    # fraction would lose about log10(a y) digits there, the asymptotic series none.
    if a >= _LARGE_A and b <= _LARGE_A_B_RATIO * a and y <= _LARGE_A_Y:
        return _large_a_pair(a, b, y)
    if b >= _LARGE_A and a <= _LARGE_A_B_RATIO * b and x <= _LARGE_A_Y:
        upper, lower = _large_a_pair(b, a, x)
        return lower, upper
    front = _beta_front(a, b, x, y)
    if x < (a + 1.0) / (a + b + 2.0):
        lower = min(front * _beta_fraction(a, b, x, y) / a, 1.0)
        return lower, 1.0 - lower
    upper = min(front * _beta_fraction(b, a, y, x) / b, 1.0)
    return 1.0 - upper, upper


def regularized_beta(x: float, a: float, b: float, *, upper: bool = False) -> float:
    """I_x(a, b), the regularized incomplete beta function (upper=True: 1 - I_x(a, b))."""
    if math.isnan(x) or math.isnan(a) or math.isnan(b):
        return math.nan
    if not (a > 0.0 and b > 0.0):
        raise ValueError(f"a and b must be positive, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if math.isinf(a) or math.isinf(b):
        raise ValueError("a and b must be finite")
    lower, complement = _beta_pair(a, b, x, 1.0 - x)
    return complement if upper else lower


def _gamma_front(s: float, z: float) -> float:
    """z^s e^(-z) / Gamma(s), from Stirling's formula so that large s keeps its digits."""
    u = (z - s) / s
    core = s * (math.log1p(u) - u) if abs(u) < 0.5 else s * math.log(z / s) + s - z
    return math.sqrt(s / (2.0 * math.pi)) * math.exp(core - _stirling_remainder(s))


def _gamma_pair(s: float, z: float) -> tuple[float, float]:
    """(P(s, z), Q(s, z)), the regularized lower and upper incomplete gamma functions."""
    if z <= 0.0:
        return 0.0, 1.0
    if math.isinf(z):
        return 1.0, 0.0
    front = _gamma_front(s, z)
    if z < s + 1.0:
        # Series: P = front / s * sum z^n / ((s + 1) ... (s + n)).
        term = 1.0 / s
        total = term
        denominator = s
        for _ in range(_MAX_ITER):
            denominator += 1.0
            term *= z / denominator
            total += term
            if abs(term) < abs(total) * _CF_TOL:
                break
        lower = min(front * total, 1.0)
        return lower, 1.0 - lower
    # Continued fraction for Q (modified Lentz).
    b = z + 1.0 - s
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER + 1):
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < _CF_TOL:
            break
    upper = min(front * h, 1.0)
    return 1.0 - upper, upper


def regularized_gamma_p(s: float, z: float) -> float:
    """P(s, z), the regularized lower incomplete gamma function."""
    if math.isnan(s) or math.isnan(z):
        return math.nan
    if not (0.0 < s < math.inf) or z < 0.0:
        raise ValueError(f"need 0 < s < inf and z >= 0, got s={s}, z={z}")
    return _gamma_pair(s, z)[0]


def regularized_gamma_q(s: float, z: float) -> float:
    """Q(s, z) = 1 - P(s, z), the regularized upper incomplete gamma function."""
    if math.isnan(s) or math.isnan(z):
        return math.nan
    if not (0.0 < s < math.inf) or z < 0.0:
        raise ValueError(f"need 0 < s < inf and z >= 0, got s={s}, z={z}")
    return _gamma_pair(s, z)[1]


def _check_df(name: str, df: float) -> None:
    if not df > 0.0:
        raise ValueError(f"{name} must be positive, got {df}")


def _ratio_pair(q: float) -> tuple[float, float]:
    """(1 / (1 + q), q / (1 + q)) for q > 0, including q = inf, without overflow."""
    if math.isinf(q):
        return 0.0, 1.0
    return 1.0 / (1.0 + q), 1.0 / (1.0 + 1.0 / q)


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom (df may be inf)."""
    t = float(t)
    df = float(df)
    if math.isnan(t) or math.isnan(df):
        return math.nan
    _check_df("df", df)
    if t == 0.0:
        return 1.0
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    if math.isinf(t):
        return 0.0
    # x = df / (df + t^2) and y = t^2 / (df + t^2), via the ratio so t^2 cannot overflow.
    ratio = abs(t) / math.sqrt(df)
    q = ratio * ratio
    if q == 0.0:
        return 1.0
    x, y = _ratio_pair(q)
    return _beta_pair(0.5 * df, 0.5, x, y)[0]


def r_two_sided_p(r: float, df: float) -> float:
    """Two-sided p-value of a Pearson correlation r with df = n - 2 degrees of freedom.

    Same as t_two_sided_p(r * sqrt(df / (1 - r^2)), df), computed from 1 - r^2 directly.
    """
    r = float(r)
    df = float(df)
    if math.isnan(r) or math.isnan(df):
        return math.nan
    _check_df("df", df)
    if not -1.0 <= r <= 1.0:
        raise ValueError(f"a correlation must lie in [-1, 1], got {r}")
    size = abs(r)
    if size == 1.0:
        return 0.0
    if size == 0.0:
        return 1.0
    if math.isinf(df):
        return 0.0
    # x = 1 - r^2 as (1 - |r|)(1 + |r|): exact enough even when |r| is within ulps of 1.
    return _beta_pair(0.5 * df, 0.5, (1.0 - size) * (1.0 + size), size * size)[0]


def f_sf(f: float, df1: float, df2: float) -> float:
    """P(F >= f) for the F distribution with (df1, df2) degrees of freedom (either may be inf)."""
    f = float(f)
    df1 = float(df1)
    df2 = float(df2)
    if math.isnan(f) or math.isnan(df1) or math.isnan(df2):
        return math.nan
    _check_df("df1", df1)
    _check_df("df2", df2)
    if f <= 0.0:
        return 1.0
    if math.isinf(f):
        return 0.0
    if math.isinf(df1) and math.isinf(df2):
        return 1.0 if f < 1.0 else 0.0  # a point mass at 1
    if math.isinf(df2):
        # df1 * F tends to chi-square(df1).
        return _gamma_pair(0.5 * df1, 0.5 * df1 * f)[1]
    if math.isinf(df1):
        # df2 / F tends to chi-square(df2).
        return _gamma_pair(0.5 * df2, 0.5 * df2 / f)[0]
    q = (df1 / df2) * f
    if q == 0.0:
        return 1.0
    x, y = _ratio_pair(q)
    return _beta_pair(0.5 * df2, 0.5 * df1, x, y)[0]
