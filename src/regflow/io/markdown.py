"""Escape user-supplied text (column, model and file names, references, messages naming
them) before it is placed into a markdown artifact.

Prefect renders artifact markdown in its UI: a column named "a|b" would split a table cell,
a newline followed by "# H1" would start a heading, and `<img src=x onerror=...>` would
reach the page as HTML. `md_text` makes any string render as the same text on one line.
"""

from __future__ import annotations

import re

__all__ = ["md_text"]

# Markdown punctuation that can start or end a construct; `|` splits a GFM table cell.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-!|])")
# < > & as entities, not backslash escapes: a backslash before an entity would show it raw.
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def md_text(value: object) -> str:
    """`value` as text that markdown shows literally, on a single line."""
    text = re.sub(r"[\r\n]+", " ", str(value))  # a line break could start a heading or row
    return _MARKDOWN.sub(r"\\\1", text).translate(_HTML)
