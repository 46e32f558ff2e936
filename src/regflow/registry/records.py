"""What the registry hands back: small frozen pydantic models, printable as JSON."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from regflow.schemas.model_card import Signature

VersionStatus = Literal["ready", "deleted"]
AliasAction = Literal["set", "rollback", "remove"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class RegisteredModel(_Record):
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: str
    latest_version: int | None = None
    versions: int = 0
    aliases: dict[str, int] = Field(default_factory=dict)


class ModelVersion(_Record):
    """One immutable version: what it is, where its files are and how to check them."""

    name: str
    version: int
    status: VersionStatus
    created_at: str
    deleted_at: str | None = None
    deleted_by: str | None = None
    actor: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = Field(None, description="flow run id of the training run")
    data_sha256: str | None = None
    signature: Signature
    metrics: dict[str, dict[str, Any]] = Field(description="per split, from the model card")
    lineage: dict[str, Any]
    manifest_sha256: str
    files: str = Field(description="folder inside the store")
    size_bytes: int = Field(0, description="the version's files on disk, manifest included")
    aliases: list[str] = Field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


class AliasEvent(_Record):
    """One entry of the alias audit log."""

    id: int
    time: str
    name: str
    alias: str
    action: AliasAction
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str | None
    metrics: dict[str, Any] | None = None


class MonitoringRecord(_Record):
    """One scoring run's verdict on a version: live metrics and drift against training."""

    id: int
    time: str
    name: str
    version: int
    status: Literal["ok", "degraded"]
    run_id: str | None
    data_sha256: str | None
    rows: int = Field(description="labelled rows the live metrics were computed on")
    failed: list[str] = Field(description="the checks that failed: mse_ratio, psi:<feature>")
    report: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"
