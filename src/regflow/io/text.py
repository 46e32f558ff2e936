"""Short text for messages and log lines built from lists of names."""

from __future__ import annotations

from collections.abc import Iterable

NAME_LIMIT = 10


def name_list(names: Iterable[object], limit: int = NAME_LIMIT, *, quote: bool = True) -> str:
    """The first `limit` names joined by ", ", then "... and N more".

    Data may have tens of thousands of columns: a message or log line naming every one of them
    is hundreds of kilobytes that nobody reads.
    """
    items = [str(name) for name in names]
    shown = [f"'{name}'" if quote else name for name in items[:limit]]
    text = ", ".join(shown)
    rest = len(items) - len(shown)
    if rest > 0:
        text += f", ... and {rest:,} more"
    return text


def printable(name: object) -> str:
    """`name` with control characters escaped: a column name must not move the cursor,
    clear the screen or forge a line of output in a terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(name))


def human_size(size_bytes: int) -> str:
    """Bytes in decimal units (1 kB = 1000 B), as `ls -h --si` and `du --si` print them."""
    if size_bytes < 1000:
        return f"{size_bytes} B"
    size = float(size_bytes)
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} TB"
