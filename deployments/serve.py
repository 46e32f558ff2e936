"""Serve regflow's deployments without a work pool or worker: `regflow serve`.

The deployments, their parameters, schedules and triggers are read from
`deployments/prefect.yaml`, so `prefect deploy --all` and `serve` never drift apart. The
served flows run as subprocesses of this process, in the repository root (the yaml's
entrypoints and data paths are relative to it).

    python deployments/serve.py            # or: regflow serve [--only nightly] [--limit 1]
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

if TYPE_CHECKING:  # Prefect's runner is heavy to import; only `serve` needs it.
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PREFECT_FILE = REPO_ROOT / "deployments" / "prefect.yaml"


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of prefect.yaml's `deployments:` list, the parts `serve` uses."""

    name: str
    entrypoint: str
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    concurrency_limit: int | None = None

    @property
    def flow_file(self) -> str:
        return self.entrypoint.rsplit(":", 1)[0]


def load_specs(prefect_file: Path = DEFAULT_PREFECT_FILE) -> list[DeploymentSpec]:
    """The deployments declared in `prefect_file` (YAML anchors resolved)."""
    config = yaml.safe_load(prefect_file.read_text()) or {}
    specs = []
    for entry in config.get("deployments") or []:
        specs.append(
            DeploymentSpec(
                name=entry["name"],
                entrypoint=entry["entrypoint"],
                parameters=dict(entry.get("parameters") or {}),
                schedules=list(entry.get("schedules") or []),
                triggers=list(entry.get("triggers") or []),
                description=entry.get("description"),
                tags=list(entry.get("tags") or []),
                concurrency_limit=entry.get("concurrency_limit"),
            )
        )
    return specs


def to_schedule(config: dict[str, Any]) -> Any:
    """A prefect.yaml schedule entry (cron or interval) as a `prefect.schedules` object."""
    from prefect.schedules import Cron, Interval

    common = {
        "timezone": config.get("timezone"),
        "active": config.get("active", True),
        "parameters": config.get("parameters") or {},
    }
    if "cron" in config:
        return Cron(config["cron"], day_or=config.get("day_or", True), **common)
    if "interval" in config:
        return Interval(timedelta(seconds=float(config["interval"])), **common)
    raise ValueError(f"schedule {config!r}: serve supports cron and interval schedules")


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """`flows/training.py:train` -> the flow object, imported as a module of the package.

    (Prefect's own loader falls back to a placeholder flow when the import fails; here an
    import error should surface as itself.)
    """
    from prefect import Flow

    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(Path(path).with_suffix("").as_posix().replace("/", "."))
    flow = getattr(module, name)
    if not isinstance(flow, Flow):
        raise TypeError(f"{entrypoint} is not a Prefect flow")
    return flow


def to_runner_deployment(spec: DeploymentSpec) -> RunnerDeployment:
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    flow = load_flow(spec.entrypoint)
    triggers = TypeAdapter(list[DeploymentTriggerTypes]).validate_python(spec.triggers)
    return flow.to_deployment(
        name=spec.name,
        parameters=spec.parameters,
        schedules=[to_schedule(s) for s in spec.schedules],
        triggers=list(triggers),
        description=spec.description,
        tags=spec.tags,
        concurrency_limit=spec.concurrency_limit,
    )


def worker_bound(names: Sequence[str]) -> dict[str, str]:
    """Of these `flow/deployment` names, those the server holds on a work pool, with the pool.

    Serving such a deployment updates it in place but leaves it half a work-pool
    deployment (Prefect 3.9 keeps the pool and drops the pull steps), so its runs crash.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    bound = {}
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                existing = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                bound[name] = existing.work_pool_name
    return bound


def select(specs: Sequence[DeploymentSpec], only: Sequence[str] | None) -> list[DeploymentSpec]:
    if not only:
        return list(specs)
    known = {s.name for s in specs}
    unknown = sorted(set(only) - known)
    if unknown:
        raise typer.BadParameter(
            f"no deployment named {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            param_hint="--only",
        )
    return [s for s in specs if s.name in only]


def _describe(spec: DeploymentSpec) -> str:
    when = ", ".join(
        f"cron '{s['cron']}' {s.get('timezone', '')}".strip()
        if "cron" in s
        else f"every {s.get('interval')} s"
        for s in spec.schedules
    )
    events = ", ".join(e for t in spec.triggers for e in t.get("expect", []))
    extra = f"; on {events}" if events else ""
    return f"{spec.entrypoint} as '{spec.name}': {when or 'no schedule'}{extra}"


def serve_command(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Serve only this deployment (repeatable): nightly, hourly."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="At most this many flow runs at the same time."),
    ] = None,
    prefect_file: Annotated[
        Path,
        typer.Option(
            "--prefect-file", exists=True, dir_okay=False, help="The deployments to serve."
        ),
    ] = DEFAULT_PREFECT_FILE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be served and exit.")
    ] = False,
) -> None:
    """Serve deployments/prefect.yaml's deployments (schedules, triggers) without a worker.

    Runs execute in subprocesses of this command, from the repository root, against the
    server in PREFECT_API_URL (start one with `prefect server start` or `make ui`).
    """
    specs = select(load_specs(prefect_file.resolve()), only)
    for spec in specs:
        typer.echo(f"serve: {_describe(spec)}")
    if dry_run:
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Entrypoints and data paths are relative to the checkout, wherever this was started.
    os.chdir(REPO_ROOT)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))

    from prefect import serve

    deployments = [to_runner_deployment(s) for s in specs]
    bound = worker_bound([f"{d.flow_name}/{d.name}" for d in deployments])
    if bound:
        for name, pool in bound.items():
            typer.echo(
                f"regflow serve: {name} is deployed to the work pool {pool} on this server; "
                f"serve or deploy, not both: `prefect deployment delete {name}` first, "
                "or keep using a worker",
                err=True,
            )
        raise typer.Exit(2)
    serve(*deployments, limit=limit)


def main() -> None:
    typer.run(serve_command)


if __name__ == "__main__":
    main()
