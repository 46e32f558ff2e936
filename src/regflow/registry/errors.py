"""Failures the registry expects; the CLI turns each into one line and an exit code."""

from __future__ import annotations

from regflow.errors import Problem, RegflowError


class RegistryError(RegflowError):
    """Anything the registry refuses to do (exit 1)."""

    state_name = "RegistryError"


class NotFoundError(RegistryError):
    """A reference names a model, version or alias the registry does not hold (exit 2)."""

    exit_code = 2
    status = "invalid"
    state_name = "NotFound"


class InvalidReferenceError(NotFoundError):
    """A reference is not of the form `name`, `name:version` or `name@alias` (exit 2)."""

    state_name = "InvalidReference"


class RegistryReadOnlyError(RegistryError):
    """A write to a registry opened read-only (read-only mount, or a folder we cannot write)."""

    exit_code = 2
    status = "invalid"
    state_name = "RegistryReadOnly"
    check = "registry_read_only"

    def __init__(self, location: str, action: str = "change it"):
        self.location = location
        super().__init__(
            f"registry {location} is read-only: cannot {action}; nothing was changed (use a "
            "writable copy, or ask its owner)"
        )

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "check": self.check, "registry": self.location}


class SchemaVersionError(RegistryError):
    """The index's schema is older (run `regflow models migrate`) or newer than this regflow's."""

    state_name = "SchemaVersion"


class AliasConflict(RegistryError):
    """An alias moved under us: compare-and-set saw another version than expected."""

    state_name = "AliasConflict"

    def __init__(self, name: str, alias: str, expected: int | None, actual: int | None):
        self.name = name
        self.alias = alias
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"alias {name}@{alias} is held by {_version_text(actual)}, "
            f"expected {_version_text(expected)}; someone moved it meanwhile, re-read and retry"
        )


class AliasInUseError(RegistryError):
    """A version cannot be deleted while an alias points at it."""

    state_name = "AliasInUse"


class IntegrityError(RegistryError):
    """A stored file or manifest does not match its recorded SHA-256 or size."""

    state_name = "IntegrityError"

    def __init__(self, ref: str, problems: list[Problem]):
        self.ref = ref
        self.problems = problems
        first = problems[0].message if problems else "integrity check failed"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{ref}: refusing to use this version: {first}{more}")

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": str(self),
            "ref": self.ref,
            "problems": [p.to_dict() for p in self.problems],
        }


def _version_text(version: int | None) -> str:
    return "nothing" if version is None else f"version {version}"
