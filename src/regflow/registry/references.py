"""Model references: `name`, `name:version` and `name@alias`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from regflow.registry.errors import InvalidReferenceError
from regflow.schemas.params import MODEL_NAME_PATTERN, MODEL_NAME_RULE

# One pattern for training's --model and the registry's references (schemas.params).
NAME_PATTERN = re.compile(MODEL_NAME_PATTERN)
# Aliases start with a letter so `name@3` cannot be mistaken for a version.
ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# The index stores versions as 64-bit integers; a larger number could never match a row.
MAX_VERSION = 2**63 - 1


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference; exactly one of version/alias is set, or neither for 'latest'."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def is_latest(self) -> bool:
        return self.version is None and self.alias is None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidReferenceError(f"invalid model name {name!r}: use {MODEL_NAME_RULE}")
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_PATTERN.match(alias):
        raise InvalidReferenceError(
            f"invalid alias {alias!r}: use letters, digits, '_' or '-', starting with a letter"
        )
    return alias


def parse_ref(text: str | ModelRef) -> ModelRef:
    """Parse `name`, `name:version` or `name@alias`; raise InvalidReferenceError otherwise."""
    if isinstance(text, ModelRef):
        return text
    if not isinstance(text, str) or not text.strip():
        raise InvalidReferenceError(f"empty model reference {text!r}")
    text = text.strip()
    if "@" in text and ":" in text:
        raise InvalidReferenceError(
            f"invalid reference {text!r}: use name:version or name@alias, not both"
        )
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(check_name(name), alias=check_alias(alias))
    if ":" in text:
        name, _, number = text.partition(":")
        if not re.fullmatch(r"[0-9]+", number) or not 1 <= int(number) <= MAX_VERSION:
            raise InvalidReferenceError(
                f"invalid reference {text!r}: the version after ':' must be a positive integer "
                f"of at most {MAX_VERSION}"
            )
        return ModelRef(check_name(name), version=int(number))
    return ModelRef(check_name(text))
