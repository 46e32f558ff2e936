"""One or two examples per command, shown at the end of its --help.

Kept in one table, keyed by the command's path, so a test can walk every command, find its
examples and check that each one parses with the options the command really has.
"""

from __future__ import annotations

import typer

# Plain text: rich markup would read "[...]" as a style, so examples use no brackets.
EXAMPLES: dict[str, list[str]] = {
    "": [
        "regflow train data/seed.csv --target y --model seed",
        "regflow predict data/seed.csv --model seed@champion",
    ],
    "train": [
        "regflow train data/seed.csv --target y --features x --model seed",
        "regflow train data/seed.csv --target y --preset seed --json",
        "regflow train data/parts/part-000.csv data/parts/part-001.csv --target sales",
    ],
    "predict": ["regflow predict data/seed.csv --model seed@champion --out scores.csv"],
    "serve": ["regflow serve --dry-run", "regflow serve --only nightly --limit 2"],
    "models": ["regflow models list", "regflow models show seed@champion"],
    "models list": ["regflow models list", "regflow models list seed --json"],
    "models show": ["regflow models show seed@champion"],
    "models history": ["regflow models history seed --alias champion"],
    "models promote": ["regflow models promote seed:2 --alias champion --reason reviewed"],
    "models rollback": ["regflow models rollback seed --alias champion"],
    "models verify": ["regflow models verify", "regflow models verify seed:1"],
    "models delete": ["regflow models delete seed:1"],
    "models gc": ["regflow models gc --json"],
    "models export": ["regflow models export seed@champion --out seed.joblib"],
    "models monitor": ["regflow models monitor seed --last 5"],
    "models migrate": ["regflow models migrate --registry postgresql+psycopg://team@db/models"],
    "server": ["regflow server start", "regflow server status"],
    "server start": ["regflow server start", "regflow server start --port 0 --json"],
    "server stop": ["regflow server stop"],
    "server status": ["regflow server status --json"],
    "models copy": [
        "regflow models copy artifacts/registry postgresql+psycopg://team@db/models "
        "--dst-store s3://models/registry"
    ],
}


def epilog(path: str) -> str:
    """The help's closing paragraphs: one per example (typer joins single line breaks)."""
    shown = EXAMPLES[path]
    head = "Example:" if len(shown) == 1 else "Examples:"
    return "\n\n".join([head, *(f"  {line}" for line in shown)])


def add_examples(app: typer.Typer, path: str = "") -> None:
    """Set the epilog of `app` and of every command and group under it from EXAMPLES."""
    app.info.epilog = epilog(path)
    for command in app.registered_commands:
        command.epilog = epilog(f"{path} {command.name}".strip())
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_examples(group.typer_instance, f"{path} {group.name}".strip())
