"""Serve regflow's deployments without a work pool or worker: `regflow serve`.

The deployments, their parameters, schedules and triggers are read from prefect.yaml (by
default the copy shipped in the package, `regflow.deployments`), so `prefect deploy --all`
and `serve` never drift apart. The yaml's file entrypoints (`flows/training.py:train`) are
served as modules of the installed package (`regflow.flows.training`), so `serve` works from
any directory, checkout or not. The served flows run as subprocesses of this process, in the
directory it was started in: the yaml's data paths are relative to it (see
`with_bundled_data` for the bundled example data).

    python -m regflow.deployments.serve    # or: regflow serve [--only nightly] [--limit 1]
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.resources import files
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

if TYPE_CHECKING:  # Prefect's runner is heavy to import; only `serve` needs it.
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

PACKAGE = "regflow"
# A wheel installs as plain files, so the packaged yaml and data are real paths.
DEFAULT_PREFECT_FILE = Path(str(files(f"{PACKAGE}.deployments").joinpath("prefect.yaml")))
BUNDLED_DATA = Path(str(files(f"{PACKAGE}.data")))


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

    @property
    def module_entrypoint(self) -> str:
        """The entrypoint as a module path of the package: `regflow.flows.training.train`."""
        module, name = module_and_name(self.entrypoint)
        return f"{module}.{name}"


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


def module_and_name(entrypoint: str) -> tuple[str, str]:
    """`flows/training.py:train` -> (`regflow.flows.training`, `train`).

    The yaml names files of the checkout (what `prefect deploy` needs); each folder in it is
    a subpackage of `regflow` (src/regflow is `regflow` itself), so the same flow imports
    from the installed package. A module path (`regflow.flows.training.train`) passes through.
    """
    if ":" not in entrypoint:
        module, _, name = entrypoint.rpartition(".")
        return module, name
    path, _, name = entrypoint.partition(":")
    parts = PurePosixPath(path).with_suffix("").parts
    if parts[:2] == ("src", PACKAGE):
        parts = parts[1:]
    elif parts[:1] != (PACKAGE,):
        parts = (PACKAGE, *parts)
    if parts[-1] == "__init__":  # a package's own file is the package
        parts = parts[:-1]
    return ".".join(parts), name


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """`flows/training.py:train` -> the flow object, imported from the installed package.

    (Prefect's own loader falls back to a placeholder flow when the import fails; here an
    import error should surface as itself.)
    """
    from prefect import Flow

    module_name, name = module_and_name(entrypoint)
    flow = getattr(importlib.import_module(module_name), name)
    if not isinstance(flow, Flow):
        raise TypeError(f"{entrypoint} is not a Prefect flow")
    return flow


def with_bundled_data(value: Any, cwd: Path | None = None) -> Any:
    """`value` with each bundled example path that is missing from `cwd` made absolute.

    prefect.yaml's data paths (`data/seed.csv`) are relative to the directory the runs start
    in, a checkout when deploying. An installed `regflow serve` may start anywhere: a string
    `data/<file>` that does not exist under `cwd` (default: the current directory) but is
    one of the package's bundled files (regflow/data) becomes that file's absolute path.
    Other values, and paths that do exist, are left alone. Nested dicts and lists are
    walked, so flat (`data: data/seed.csv`) and grouped (`data: {path: ...}`) parameters
    both work.
    """
    base = Path.cwd() if cwd is None else cwd
    if isinstance(value, dict):
        return {k: with_bundled_data(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [with_bundled_data(v, base) for v in value]
    if isinstance(value, str):
        path = PurePosixPath(value)
        bundled = BUNDLED_DATA / path.name
        if path.parts == ("data", path.name) and not (base / path).exists() and bundled.exists():
            return str(bundled)
    return value


def to_runner_deployment(spec: DeploymentSpec) -> RunnerDeployment:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.events import DeploymentTriggerTypes
    from prefect.types.entrypoint import EntrypointType
    from pydantic import TypeAdapter

    flow = load_flow(spec.entrypoint)
    triggers = TypeAdapter(list[DeploymentTriggerTypes]).validate_python(spec.triggers)
    # What `flow.to_deployment` does for a flow without remote storage, minus its async
    # dispatch (whose union return type is no RunnerDeployment). A module entrypoint: each
    # run imports the flow from the installed package, not a file relative to the cwd.
    return RunnerDeployment.from_flow(
        flow,
        name=spec.name,
        parameters=with_bundled_data(spec.parameters),
        entrypoint_type=EntrypointType.MODULE_PATH,
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
    return f"{spec.module_entrypoint} as '{spec.name}': {when or 'no schedule'}{extra}"


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
    """Serve prefect.yaml's deployments (schedules, triggers) without a worker.

    Runs execute in subprocesses of this command, in the current directory (the yaml's data
    paths are relative to it), against the server in PREFECT_API_URL (start one with
    `prefect server start` or `make ui`).
    """
    specs = select(load_specs(prefect_file.resolve()), only)
    for spec in specs:
        typer.echo(f"serve: {_describe(spec)}")
    if dry_run:
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

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
