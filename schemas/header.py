"""The column checks that need only a table's column names, not its rows.

Validation runs them on the parsed frame; the CLI's pre-flight runs the same function on a
file's header before Prefect starts, so both report the same problems in the same words.
"""

from __future__ import annotations

from collections import Counter

from regflow.errors import Problem
from regflow.io.text import name_list
from regflow.schemas.columns import reserved_problems

DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
RESERVED_MESSAGE = (
    "scoring writes a column by this name, so a model using it could never score: rename it"
)


def delimiter_hint(columns: list[str]) -> str:
    if len(columns) == 1:
        for char, name in DELIMITERS.items():
            if char in columns[0]:
                return (
                    f"; the header is one column containing '{char}': is the file"
                    f" {name}-separated? regflow reads comma-separated CSV"
                )
    return ""


def header_problems(
    columns: list[str],
    target: str,
    features: list[str] | None,
    source: str | None,
    categorical: list[str] | None = None,
) -> list[Problem]:
    """Duplicate names, a missing target or feature, a bad --features or --categorical list,
    reserved names."""
    categorical = categorical or []
    available = name_list(columns, limit=20)
    hint = delimiter_hint(columns)
    problems: list[Problem] = [
        Problem(
            check="unique_column_names",
            message="the data has more than one column with this name",
            file=source,
            column=name,
        )
        # Counter, not list.count per column: that is O(d^2), seconds at 10,000 columns.
        for name, seen in sorted(Counter(columns).items())
        if seen > 1
    ]
    wanted = [target, *(features or []), *categorical]
    present = set(columns)
    for name in dict.fromkeys(wanted):
        if name not in present:
            problems.append(
                Problem(
                    check="column_present",
                    message=f"column not found; the file has {available}{hint}",
                    file=source,
                    column=name,
                )
            )
    if features is not None:
        problems += _named_list_problems(
            features, target, "--features", "the target is also named as a feature", source
        )
        if not features:
            problems.append(
                Problem(check="features_given", message="--features is empty", file=source)
            )
    problems += _named_list_problems(
        categorical, target, "--categorical", "the target is also named in --categorical", source
    )
    # Scoring's own rules (schemas.columns): a model that trains must also be able to score.
    problems += reserved_problems(wanted, source, RESERVED_MESSAGE)
    return problems


def _named_list_problems(
    names: list[str], target: str, option: str, target_message: str, source: str | None
) -> list[Problem]:
    """The target named in `option`'s list, and names listed twice there."""
    problems = []
    if target in names:
        problems.append(
            Problem(check="target_not_feature", message=target_message, file=source, column=target)
        )
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(
            Problem(
                check="unique_features",
                message=f"named more than once in {option}",
                file=source,
                column=name,
            )
        )
    return problems
