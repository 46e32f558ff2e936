"""Register: the staged run becomes a registry version, promoted or not, in one transaction.

Champion/challenger is decided first (the champion is loaded, verified and scored on this
run's evaluation rows); then the version and, when the decision says so, the champion alias
move commit together. A champion that fails verification is not a reason to crash: the
challenger is registered, not promoted, and the decision says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from regflow.io.hashing import FileDigest
from regflow.registry import (
    AliasConflict,
    AliasMove,
    IntegrityError,
    ModelVersion,
    Predictor,
    Registry,
    decide_promotion,
)
from regflow.schemas.model_card import Signature
from regflow.schemas.promotion import PromotionDecision, PromotionResult
from regflow.schemas.results import SplitMetrics
from regflow.stats.metrics import split_metrics
from regflow.tasks.outcomes import pipeline_task

CHAMPION = "champion"
CAS_ATTEMPTS = 3  # another run may move the champion between our read and our write
UNDECIDED_VERSION = 0  # the challenger's number is allocated only when it registers


def promotion_scores(m: SplitMetrics) -> dict[str, float]:
    """The metrics champion/challenger compares, as a plain dict (both engines)."""
    return {"mse": m.mse, "rmse": m.rmse, "mae": m.mae, "r2": m.r2, "n": float(m.n)}


def _metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return promotion_scores(split_metrics("all", y, predicted))


ChampionScorer = Callable[[Predictor], dict[str, float] | None]


def _decide(
    reg: Registry,
    name: str,
    signature: Signature,
    score_champion: ChampionScorer,
    challenger_metrics: dict[str, float],
    min_r2: float,
    min_improvement: float,
    target_variance: float,
    verified: Predictor | None = None,
) -> PromotionDecision:
    current = reg.get_alias(name, CHAMPION)
    champion_metrics, champion_signature, unverified = None, None, None
    if current is not None:
        try:
            champion = _still(reg, verified, name, current) or reg.load(f"{name}:{current}")
        except IntegrityError as err:
            unverified = str(err)
        else:
            champion_signature = champion.signature
            champion_metrics = score_champion(champion)
    return decide_promotion(
        challenger_version=UNDECIDED_VERSION,
        challenger_metrics=challenger_metrics,
        challenger_signature=signature,
        champion_version=current,
        champion_metrics=champion_metrics,
        champion_signature=champion_signature,
        min_r2=min_r2,
        min_improvement=min_improvement,
        champion_unverified=unverified,
        target_variance=target_variance,
    )


def _still(reg: Registry, verified: Predictor | None, name: str, version: int) -> Predictor | None:
    """`verified` (loaded, every file checked, earlier in this run) where it is still the
    champion's version with the same manifest: its files (gigabytes of a partitioned run's
    predictions) are not read a second time."""
    if verified is None or (verified.name, verified.version) != (name, version):
        return None
    same = reg.resolve(f"{name}:{version}").manifest_sha256 == verified.manifest_sha256
    return verified if same else None


def register_and_promote(
    registry: str | None,
    name: str,
    staged_run_dir: str,
    final_run_dir: str,
    signature: Signature,
    frame: pd.DataFrame,
    target: str,
    challenger_predictions: np.ndarray,
    eval_rows: np.ndarray | None,
    *,
    min_r2: float = 0.0,
    min_improvement: float = 0.0,
    actor: str | None = None,
    link_files: bool = False,
    store: str | None = None,
) -> tuple[ModelVersion, PromotionResult, str]:
    """Decide, then register the staged run (and move the champion) in one transaction.

    Returns the version, the promotion result and where the registry is (after
    $REGFLOW_REGISTRY and the default are applied). `link_files`: hard-link the staged
    files into the store (one copy on disk) where both share a filesystem.
    """
    y = frame[target].to_numpy(dtype=np.float64)
    mine = challenger_predictions
    if eval_rows is not None:
        y, mine = y[eval_rows], mine[eval_rows]

    def score(champion: Predictor) -> dict[str, float] | None:
        # `frame` is training's validated frame: indicators already in place of
        # categorical columns, so the champion reads its own columns from it.
        if not set(champion.encoded_names) <= set(frame.columns):
            return None
        predicted = champion.predict_encoded(frame)
        return _metrics(y, predicted if eval_rows is None else predicted[eval_rows])

    return register_scored(
        registry, name, staged_run_dir, final_run_dir, signature, _metrics(y, mine), score,
        "holdout" if eval_rows is not None else "all",
        target_variance=float(np.var(y)) if len(y) else 0.0, min_r2=min_r2,
        min_improvement=min_improvement, actor=actor, link_files=link_files, store=store,
    )  # fmt: skip


def register_scored(
    registry: str | None,
    name: str,
    staged_run_dir: str,
    final_run_dir: str,
    signature: Signature,
    challenger_metrics: dict[str, float],
    score_champion: ChampionScorer,
    evaluated_on: str,
    *,
    target_variance: float,
    min_r2: float = 0.0,
    min_improvement: float = 0.0,
    actor: str | None = None,
    link_files: bool = False,
    hashed_files: Mapping[str, FileDigest] | None = None,
    store: str | None = None,
    verified_champion: Predictor | None = None,
) -> tuple[ModelVersion, PromotionResult, str]:
    """register_and_promote with the scores given: the challenger's metrics on the evaluation
    rows, and a function that scores a champion on the same rows (the dask engine passes
    sums its workers computed). `hashed_files`: see Registry.register. `verified_champion`:
    the champion as this run loaded it, used again while it is still the champion."""
    with Registry.open(registry, store=store) as reg:
        before = reg.get_alias(name, CHAMPION)
        for _ in range(CAS_ATTEMPTS):
            decision = _decide(
                reg, name, signature, score_champion, challenger_metrics, min_r2,
                min_improvement, target_variance, verified_champion,
            )  # fmt: skip
            move = None
            if decision.promote:
                metrics = {"challenger": challenger_metrics, "champion": decision.champion_metrics}
                move = AliasMove(CHAMPION, decision.champion_version, decision.reason, metrics)
            try:
                version = reg.register(
                    name,
                    staged_run_dir,
                    actor=actor,
                    promote=move,
                    recorded_run_dir=final_run_dir,
                    link_files=link_files,
                    hashed_files=hashed_files,
                )
            except AliasConflict:
                continue  # the champion moved meanwhile: nothing committed, decide again
            decision = decision.model_copy(update={"challenger_version": version.version})
            after = version.version if decision.promote else decision.champion_version
            result = PromotionResult(
                decision=decision,
                promoted=decision.promote,
                champion_before=before,
                champion_after=after,
                evaluated_on=evaluated_on,
            )
            return version, result, reg.location
        raise AliasConflict(name, CHAMPION, before, reg.get_alias(name, CHAMPION))


# Registration is not idempotent (each call allocates a version): no retries.
register_task = pipeline_task(register_and_promote, name="register")
register_scored_task = pipeline_task(register_scored, name="register")
