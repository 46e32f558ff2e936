"""Champion/challenger: a pure decision the training flow calls after registering a version."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from regflow.schemas.model_card import Signature
from regflow.schemas.promotion import PromotionDecision

# Two MSEs this close are the same model as far as float rounding can tell: retraining on the
# same rows must not promote (each promotion fires events and starts scoring automations).
TIE_RELATIVE = 1e-9  # of the larger MSE
TIE_OF_VARIANCE = 1e-12  # of the target's variance on the evaluation rows (MSEs near zero)


def is_tie(challenger_mse: float, champion_mse: float, target_variance: float = 0.0) -> bool:
    """True when two MSEs on the same evaluation rows differ only by float rounding."""
    floor = TIE_OF_VARIANCE * target_variance if math.isfinite(target_variance) else 0.0
    return math.isclose(challenger_mse, champion_mse, rel_tol=TIE_RELATIVE, abs_tol=floor)


def _signature(value: Signature | Mapping[str, Any]) -> Signature:
    return value if isinstance(value, Signature) else Signature.model_validate(value)


def _signature_key(signature: Signature) -> tuple[frozenset[tuple[str, str]], str]:
    # Feature order does not matter: predictors select columns by name.
    # A categorical column's levels are part of its type: other levels, other coefficients.
    features = frozenset(
        (c.name, c.dtype if c.kind == "numeric" else f"categorical{c.levels}")
        for c in signature.features
    )
    return features, signature.target.name


def signature_difference(
    a: Signature | Mapping[str, Any], b: Signature | Mapping[str, Any]
) -> str | None:
    """A short description of how two signatures differ, or None when they match."""
    sa, sb = _signature(a), _signature(b)
    (fa, ta), (fb, tb) = _signature_key(sa), _signature_key(sb)
    parts = []
    if fa != fb:
        left = [f"{n}:{d}" for n, d in sorted(fa)]
        right = [f"{n}:{d}" for n, d in sorted(fb)]
        parts.append(f"features {left} vs {right}")
    if ta != tb:
        parts.append(f"target {ta!r} vs {tb!r}")
    return "; ".join(parts) or None


def _metrics(values: Mapping[str, Any], who: str) -> dict[str, float]:
    missing = [k for k in ("mse", "r2") if k not in values]
    if missing:
        raise ValueError(f"{who} metrics lack {missing}; pass mse and r2 on the evaluation data")
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}


def decide_promotion(
    *,
    challenger_version: int,
    challenger_metrics: Mapping[str, Any],
    challenger_signature: Signature | Mapping[str, Any],
    champion_version: int | None,
    champion_metrics: Mapping[str, Any] | None,
    champion_signature: Signature | Mapping[str, Any] | None,
    min_r2: float = 0.0,
    min_improvement: float = 0.0,
    champion_unverified: str | None = None,
    target_variance: float = 0.0,
) -> PromotionDecision:
    """Apply the promotion rules; both metric sets must come from the same evaluation data.

    1. No champion: promote when the challenger's r2 >= min_r2.
    2. The challenger already is the champion: nothing to do.
    2a. The champion's stored files failed verification (`champion_unverified` says how):
       never replace it automatically; someone should look first.
    3. Signatures differ (feature names/dtypes or target): never promote automatically.
    4. A tie (the MSEs equal within float rounding, see `is_tie`; `target_variance` is the
       target's variance on the evaluation rows) never promotes.
    5. Otherwise promote when challenger mse <= champion mse * (1 - min_improvement).
    Non-finite challenger metrics never promote.
    """
    if not 0.0 <= min_improvement < 1.0:
        raise ValueError(f"min_improvement must be in [0, 1), got {min_improvement}")
    if not math.isfinite(min_r2):
        raise ValueError(f"min_r2 must be finite, got {min_r2}")
    challenger = _metrics(challenger_metrics, "challenger")
    common: dict[str, Any] = {
        "challenger_version": challenger_version,
        "challenger_metrics": challenger,
        "champion_version": champion_version,
        "min_r2": min_r2,
        "min_improvement": min_improvement,
    }
    c_mse, c_r2 = challenger["mse"], challenger["r2"]

    if champion_version is None:
        if not (math.isfinite(c_mse) and math.isfinite(c_r2)):
            return PromotionDecision(
                promote=False,
                rule="invalid_metrics",
                reason=f"no champion, but the challenger's metrics are not finite "
                f"(mse={c_mse}, r2={c_r2})",
                champion_metrics=None,
                **common,
            )
        ok = c_r2 >= min_r2
        verdict = "meets" if ok else "is below"
        return PromotionDecision(
            promote=ok,
            rule="no_champion",
            reason=f"no champion yet; challenger r2={c_r2:.6g} {verdict} "
            f"the floor min_r2={min_r2:g}",
            champion_metrics=None,
            **common,
        )

    champion = _metrics(champion_metrics, "champion") if champion_metrics is not None else None
    if champion_version == challenger_version:
        return PromotionDecision(
            promote=False,
            rule="already_champion",
            reason=f"version {challenger_version} already is the champion",
            champion_metrics=champion,
            **common,
        )
    if champion_unverified is not None:
        return PromotionDecision(
            promote=False,
            rule="champion_unverified",
            reason=f"the champion, version {champion_version}, failed verification "
            f"({champion_unverified}); not promoted: run `regflow models verify` and promote "
            "by hand",
            champion_metrics=champion,
            **common,
        )
    if champion_signature is None:
        raise ValueError("champion_signature is required when there is a champion")
    diff = signature_difference(challenger_signature, champion_signature)
    if diff is not None:
        return PromotionDecision(
            promote=False,
            rule="signature_mismatch",
            reason=f"signature differs from champion version {champion_version} ({diff}); "
            "promote it by hand if intended",
            champion_metrics=champion,
            **common,
        )
    if champion is None:
        raise ValueError(
            "champion_metrics are required when signatures match: score the champion "
            "on the challenger's evaluation data"
        )
    if not (math.isfinite(c_mse) and math.isfinite(c_r2)):
        return PromotionDecision(
            promote=False,
            rule="invalid_metrics",
            reason=f"the challenger's metrics are not finite (mse={c_mse}, r2={c_r2})",
            champion_metrics=champion,
            **common,
        )
    threshold = champion["mse"] * (1.0 - min_improvement)
    if is_tie(c_mse, champion["mse"], target_variance):
        return PromotionDecision(
            promote=False,
            rule="tie",
            reason=f"challenger mse={c_mse:.6g} equals champion version {champion_version} "
            f"mse={champion['mse']:.6g} within float rounding; not promoted (a tie changes "
            "nothing)",
            champion_metrics=champion,
            mse_threshold=threshold,
            **common,
        )
    # A champion with non-finite mse (nan/inf) is beaten by any finite challenger.
    ok = c_mse <= threshold or not math.isfinite(champion["mse"])
    verdict = "<=" if ok else ">"
    return PromotionDecision(
        promote=ok,
        rule="mse_improvement",
        reason=f"challenger mse={c_mse:.6g} {verdict} champion version {champion_version} "
        f"mse={champion['mse']:.6g} x (1 - {min_improvement:g}) = {threshold:.6g}",
        champion_metrics=champion,
        mse_threshold=threshold,
        **common,
    )
