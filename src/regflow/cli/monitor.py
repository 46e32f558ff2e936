"""`regflow models monitor NAME`: the monitoring history of a model, newest last.

Each row is one scoring run whose data held the target column (see docs/registry.md,
"Monitoring"): its verdict, the checks that failed, live MSE against the version's own.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regflow.cli.models import JsonOption, RegistryOption, StoreOption, _num, _registry, emit


def monitor_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Only this version's records.")
    ] = None,
    last: Annotated[
        int | None, typer.Option("--last", min=1, help="Only the newest N records.")
    ] = None,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the monitoring verdicts scoring runs recorded for NAME (e.g. `models monitor seed`)."""
    with _registry(registry, as_json, store) as reg:
        records = reg.list_monitoring(name, version=version, limit=last)
        payload = {
            "registry": reg.location,
            "name": name,
            "records": [r.model_dump(mode="json") for r in records],
        }

        def human() -> None:
            if not records:
                typer.echo(f"no monitoring records for {name} (score data with its target)")
            for r in records:
                live = (r.report.get("live") or {}).get("mse")
                reference = r.report.get("reference_mse")
                split = r.report.get("reference_split", "-")
                failed = ", ".join(r.failed) or "-"
                typer.echo(
                    f"{r.time}\t{r.ref}\t{r.status}\trows={r.rows}\tlive mse={_num(live)}\t"
                    f"{split} mse={_num(reference)}\tfailed: {failed}"
                )

        emit(payload, as_json, human)
