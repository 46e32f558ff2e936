"""The regflow model registry: immutable versions, audited aliases, verified loading.

No Prefect in here: flows and tasks call it; so do the CLI and plain scripts.
"""

from regflow.registry.aliases import UNSET, AliasMove
from regflow.registry.errors import (
    AliasConflict,
    AliasInUseError,
    IntegrityError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
    RegistryReadOnlyError,
    SchemaVersionError,
)
from regflow.registry.predictor import Predictor
from regflow.registry.promotion import decide_promotion, signature_difference
from regflow.registry.records import (
    AliasEvent,
    ModelVersion,
    MonitoringRecord,
    RegisteredModel,
)
from regflow.registry.references import ModelRef, parse_ref
from regflow.registry.registry import Registry
from regflow.schemas.promotion import PromotionDecision

__all__ = [
    "UNSET",
    "AliasConflict",
    "AliasEvent",
    "AliasInUseError",
    "AliasMove",
    "IntegrityError",
    "InvalidReferenceError",
    "ModelRef",
    "ModelVersion",
    "MonitoringRecord",
    "NotFoundError",
    "Predictor",
    "PromotionDecision",
    "RegisteredModel",
    "Registry",
    "RegistryError",
    "RegistryReadOnlyError",
    "SchemaVersionError",
    "decide_promotion",
    "parse_ref",
    "signature_difference",
]
