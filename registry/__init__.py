"""The regflow model registry: immutable versions, audited aliases, verified loading.

No Prefect in here: flows and tasks call it; so do the CLI and plain scripts.
"""

from registry.core import UNSET, Registry
from registry.errors import (
    AliasConflict,
    AliasInUseError,
    IntegrityError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
)
from registry.predictor import Predictor
from registry.promotion import PromotionDecision, decide_promotion, signature_difference
from registry.records import AliasEvent, ModelVersion, RegisteredModel
from registry.references import ModelRef, parse_ref

__all__ = [
    "UNSET",
    "AliasConflict",
    "AliasEvent",
    "AliasInUseError",
    "IntegrityError",
    "InvalidReferenceError",
    "ModelRef",
    "ModelVersion",
    "NotFoundError",
    "Predictor",
    "PromotionDecision",
    "RegisteredModel",
    "Registry",
    "RegistryError",
    "decide_promotion",
    "parse_ref",
    "signature_difference",
]
