"""Expected failures, each with the exit code and Prefect state name a user sees."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self


@dataclass(frozen=True)
class Problem:
    """One failed check: where it failed and a few example rows."""

    check: str
    message: str
    file: str | None = None
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    count: int | None = None

    def describe(self) -> str:
        where = f"column '{self.column}'" if self.column is not None else "file"
        text = f"{where}: check '{self.check}' failed: {self.message}"
        if self.rows:
            shown = ", ".join(
                f"{row} ({value})" if value != "" else str(row)
                for row, value in zip(self.rows, self.values or [""] * len(self.rows), strict=False)
            )
            if self.count is None or self.count == len(self.rows):
                text += f"; row{'s' if len(self.rows) > 1 else ''} {shown}"
            else:
                text += f"; {self.count} rows, e.g. rows {shown}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "column": self.column,
            "check": self.check,
            "message": self.message,
            "rows": self.rows,
            "values": self.values,
            "count": self.count,
        }


class RegflowError(Exception):
    """Base of the failures regflow expects; the CLI turns them into a message and exit code."""

    exit_code = 1
    status = "failed"
    state_name = "Failed"
    retryable = False  # True: a fault that may pass (Prefect task retries try again)
    # The flow run that failed, where one did; the Python API sets it so users can find it.
    flow_run_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": str(self)}


class InvalidInputError(RegflowError):
    """The data or the options cannot be used; lists every problem found."""

    exit_code = 2
    status = "invalid"
    state_name = "InvalidInput"

    def __init__(self, source: str | None, problems: list[Problem]):
        self.source = source
        self.problems = problems
        head = f"{source}: " if source else ""
        count = len(problems)
        lines = [f"{head}invalid input ({count} problem{'s' if count != 1 else ''})"]
        # A problem in one file of a multi-file dataset names that file.
        lines += [
            f"  - {p.file}: {p.describe()}"
            if p.file and p.file != source
            else f"  - {p.describe()}"
            for p in problems
        ]
        super().__init__("\n".join(lines))

    @classmethod
    def single(
        cls, source: str | None, check: str, message: str, column: str | None = None
    ) -> Self:
        return cls(source, [Problem(check=check, message=message, file=source, column=column)])

    def renamed(self, name: str) -> InvalidInputError:
        """The same problems, naming the data `name` where they named it by its path."""
        problems = [replace(p, file=name) if p.file == self.source else p for p in self.problems]
        return InvalidInputError(name, problems)

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": str(self),
            "file": self.source,
            "problems": [p.to_dict() for p in self.problems],
        }


class UsageError(InvalidInputError):
    """An option names something this machine or dataset does not have (exit 2)."""

    def __init__(self, message: str, check: str = "usage"):
        super().__init__(None, [Problem(check=check, message=message)])


class RemoteReadError(RegflowError):
    """A remote read failed in a way that may pass (5xx, timeout, refused): retried, then exit 1."""

    state_name = "RemoteReadFailed"
    retryable = True

    def __init__(self, source: str, reason: str):
        super().__init__(
            f"{source}: could not read the remote file: {reason}; the server or network may be "
            "down: try again later"
        )
        self.source = source
        self.reason = reason

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": str(self), "file": self.source}


class TrainingDivergedError(RegflowError):
    """The loss became NaN or infinite: the learning rate is too large for the data."""

    state_name = "TrainingDiverged"


class GateStoppedError(RegflowError):
    """The correlation gate found the relationship too weak to model (exit 3)."""

    exit_code = 3
    status = "gated"
    state_name = "WeakCorrelation"

    def __init__(self, report: object, reason: str):
        super().__init__(f"stopped by the correlation gate: {reason}")
        self.report = report
        self.reason = reason

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": str(self)}


class TrainingDidNotConvergeError(RegflowError):
    """The trained model is further from the least-squares optimum than the tolerance allows."""

    state_name = "TrainingDidNotConverge"


class MissingExtraError(RegflowError):
    """A feature needs optional dependencies that are not installed (exit 2, as usage)."""

    exit_code = 2
    status = "invalid"
    state_name = "MissingDependency"

    def __init__(self, feature: str, extra: str, reason: str):
        super().__init__(
            f"{feature} needs the optional dependencies: pip install 'regflow[{extra}]' ({reason})"
        )
        self.feature = feature
        self.extra = extra

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": str(self), "extra": self.extra}
