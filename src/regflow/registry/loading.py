"""Loading a version: a `Predictor`, its model card, or an export, each only after every
file matched its manifest and the manifest matched the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from regflow.io.model_files import weights_from_bytes
from regflow.registry.errors import IntegrityError, RegistryError
from regflow.registry.integrity import IntegrityMixin
from regflow.registry.predictor import Predictor
from regflow.registry.records import ModelVersion
from regflow.registry.references import ModelRef, parse_ref
from regflow.schemas.model_card import CARD_FILE, WEIGHTS_FILE, ModelCard

if TYPE_CHECKING:
    from regflow.registry.export import ExportResult


class LoadingMixin(IntegrityMixin):
    """`load`, `card`, `export` and `export_joblib`."""

    def load(self, ref: str | ModelRef) -> Predictor:
        """A predictor for `ref`, after every file matched the manifest and the manifest
        matched the index. Raises IntegrityError naming the file otherwise."""
        mv = self.resolve(ref)
        contents = self._verified_files(mv, keep={CARD_FILE, WEIGHTS_FILE})
        try:
            card = ModelCard.model_validate_json(contents[CARD_FILE])
            weights = weights_from_bytes(contents[WEIGHTS_FILE])
            return Predictor(
                name=mv.name,
                version=mv.version,
                requested_ref=str(parse_ref(ref)),
                signature=mv.signature,
                weights=weights,
                card=card,
                manifest_sha256=mv.manifest_sha256,
            )
        except (ValidationError, ValueError, KeyError) as exc:
            raise RegistryError(f"{mv.ref}: stored model cannot be used: {exc}") from None

    def card(self, ref: str | ModelRef) -> ModelCard:
        """The verified model card of a version."""
        mv = self.resolve(ref)
        contents = self._verified_files(mv, keep={CARD_FILE})
        return ModelCard.model_validate_json(contents[CARD_FILE])

    def export_joblib(self, ref: str | ModelRef, out: Path | str) -> Path:
        """Write a torch-free predictor for `ref` with joblib (see regflow.portable)."""
        from regflow.registry.export import export_joblib

        return export_joblib(self.load(ref), Path(out))

    def export(self, ref: str | ModelRef, out: Path | str, fmt: str = "joblib") -> ExportResult:
        """Export `ref` as `fmt` (joblib, sklearn, onnx or mlflow; see regflow.registry.export).

        A missing optional dependency is reported before the version is read."""
        from regflow.registry.export import export_model, require_extra

        require_extra(fmt)
        return export_model(self.load(ref), fmt, Path(out))

    def _verified_files(self, mv: ModelVersion, *, keep: set[str]) -> dict[str, bytes]:
        """The bytes of the files in `keep`; IntegrityError if any check of `mv` failed."""
        problems, contents = self._check_files(mv, keep=keep)
        if problems:
            raise IntegrityError(mv.ref, problems)
        return contents
