"""The champion/challenger decision and what the training flow did with it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Rule = Literal[
    "no_champion",
    "already_champion",
    "signature_mismatch",
    "invalid_metrics",
    "mse_improvement",
    "champion_unverified",
    "tie",
]


class PromotionDecision(BaseModel):
    """Whether the challenger becomes champion, why, and the numbers that decided it."""

    model_config = ConfigDict(frozen=True)

    promote: bool
    rule: Rule
    reason: str
    challenger_version: int
    challenger_metrics: dict[str, float]
    champion_version: int | None
    champion_metrics: dict[str, float] | None
    min_r2: float
    min_improvement: float
    mse_threshold: float | None = None  # champion mse * (1 - min_improvement) when compared


class PromotionResult(BaseModel):
    """The decision, and the champion before and after acting on it."""

    model_config = ConfigDict(frozen=True)

    decision: PromotionDecision
    promoted: bool
    champion_before: int | None
    champion_after: int | None
    evaluated_on: str
