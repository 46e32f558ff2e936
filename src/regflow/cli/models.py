"""`regflow models ...` (the registry).

Every command takes `--registry URI` (a folder, or a database URL; default $REGFLOW_REGISTRY
or artifacts/registry) and `--json` (the last stdout line is one JSON object). Expected
failures print one line on stderr and exit with the error's code: 2 bad input or unknown
reference, 1 anything else (integrity problems, alias conflicts, refused deletes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from regflow.cli.output import emit_json, expected_failures, finite
from regflow.io.text import human_size

models_app = typer.Typer(
    name="models",
    help="Inspect and manage the model registry: versions, aliases, verification, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="Registry folder or index URL (default: $REGFLOW_REGISTRY or artifacts/registry).",
        show_default=False,
    ),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--registry-store",
        help="Where version files are: a folder or an fsspec URL such as s3://bucket/prefix "
        "(default: $REGFLOW_REGISTRY_STORE for a database index, else store/ beside it).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object (last stdout line).")
]
ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="Who is acting, for the audit log (default: user:<login>)."),
]


class ExportFormat(StrEnum):
    joblib = "joblib"
    sklearn = "sklearn"
    onnx = "onnx"
    mlflow = "mlflow"


def emit(payload: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    """A command's result: one JSON object with --json, else `human()` prints it."""
    if as_json:
        emit_json({"status": "ok", **payload})
    else:
        human()


@contextmanager
def _registry(uri: str | None, as_json: bool, store: str | None = None) -> Iterator[Any]:
    from regflow.registry import Registry

    with expected_failures(as_json):
        reg = Registry.open(uri, store=store, create=False)
        try:
            yield reg
        finally:
            reg.close()


def _num(value: Any, digits: int = 6) -> str:
    return f"{value:.{digits}g}" if isinstance(value, int | float) else "-"


def _metric_text(metrics: dict[str, dict[str, Any]]) -> str:
    for split in ("holdout", "all", "train"):
        if split in metrics:
            m = metrics[split]
            return f"{split}: mse={_num(m.get('mse'))} r2={_num(m.get('r2'), 4)}"
    return "-"


@models_app.command("list")
def list_command(
    name: Annotated[str | None, typer.Argument(help="List this model's versions.")] = None,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List registered models, or the versions of one model."""
    with _registry(registry, as_json, store) as reg:
        if name is None:
            models = reg.list_models()
            payload = {
                "registry": reg.location,
                "models": [m.model_dump(mode="json") for m in models],
            }

            def human() -> None:
                if not models:
                    typer.echo(f"no models in {reg.location}")
                for m in models:
                    aliases = " ".join(f"@{a}={v}" for a, v in m.aliases.items()) or "-"
                    typer.echo(
                        f"{m.name}\tversions={m.versions}\tlatest={m.latest_version}\t{aliases}"
                    )
        else:
            versions = reg.list_versions(name)
            payload = {
                "registry": reg.location,
                "name": name,
                "versions": [v.model_dump(mode="json") for v in versions],
            }

            def human() -> None:
                if not versions:
                    typer.echo(f"{name} has no versions")
                for v in versions:
                    aliases = " ".join(f"@{a}" for a in v.aliases)
                    typer.echo(
                        f"{v.ref}\t{v.created_at}\t{_metric_text(v.metrics)}\t"
                        f"{human_size(v.size_bytes)}\t{aliases}".rstrip()
                    )

        emit(payload, as_json, human)


@models_app.command("show")
def show_command(
    ref: Annotated[str, typer.Argument(help="name, name:version or name@alias")],
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one version: signature, metrics, lineage, aliases and files."""
    with _registry(registry, as_json, store) as reg:
        mv = reg.resolve(ref)
        payload = {"ref": ref, "registry": reg.location, "version": mv.model_dump(mode="json")}

        def human() -> None:
            sig = mv.signature
            typer.echo(f"{mv.ref}  (requested {ref})")
            typer.echo(f"  aliases:   {', '.join('@' + a for a in mv.aliases) or '-'}")
            typer.echo(f"  created:   {mv.created_at} by {mv.actor}")
            typer.echo(f"  features:  {', '.join(f'{c.name}:{c.dtype}' for c in sig.features)}")
            typer.echo(f"  target:    {sig.target.name}")
            for split, m in mv.metrics.items():
                typer.echo(
                    f"  {split:<9}  n={m.get('n')} mse={_num(m.get('mse'))} "
                    f"rmse={_num(m.get('rmse'))} r2={_num(m.get('r2'), 4)}"
                )
            typer.echo(f"  data:      {mv.data_sha256}")
            typer.echo(f"  run:       {mv.run_id or '-'}")
            typer.echo(f"  git:       {mv.lineage.get('git_commit') or '-'}")
            typer.echo(f"  files:     {reg.store.location}/{mv.files}")
            typer.echo(f"  size:      {human_size(mv.size_bytes)} ({mv.size_bytes} bytes)")
            typer.echo(f"  manifest:  sha256 {mv.manifest_sha256}")

        emit(payload, as_json, human)


@models_app.command("history")
def history_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The alias audit log: who moved which alias from which version to which, and why."""
    with _registry(registry, as_json, store) as reg:
        events = reg.history(name, alias)
        payload = {"name": name, "events": [e.model_dump(mode="json") for e in events]}

        def human() -> None:
            if not events:
                typer.echo(f"{name}: no alias moves yet")
            for e in events:
                typer.echo(
                    f"{e.time}  @{e.alias}  {e.action:<8} {e.from_version or '-'} -> "
                    f"{e.to_version or '-'}  by {e.actor}: {e.reason or ''}".rstrip()
                )

        emit(payload, as_json, human)


@models_app.command("promote")
def promote_command(
    ref: Annotated[str, typer.Argument(help="The version to promote: name:version, ...")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to point at it.")] = "champion",
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the log.")] = None,
    actor: ActorOption = None,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point an alias at a version (compare-and-set, logged)."""
    with _registry(registry, as_json, store) as reg:
        event = reg.promote(ref, alias, reason=reason, actor=actor)
        payload = {"event": event.model_dump(mode="json")}
        emit(
            payload,
            as_json,
            lambda: typer.echo(
                f"{event.name}@{event.alias}: {event.from_version or '-'} -> {event.to_version}"
            ),
        )


@models_app.command("rollback")
def rollback_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to roll back.")] = "champion",
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the log.")] = None,
    actor: ActorOption = None,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an alias (default champion) back to its previous holder (logged)."""
    with _registry(registry, as_json, store) as reg:
        event = reg.rollback(name, alias, actor=actor, reason=reason)
        payload = {"event": event.model_dump(mode="json")}
        emit(
            payload,
            as_json,
            lambda: typer.echo(
                f"{event.name}@{event.alias}: rolled back {event.from_version} -> "
                f"{event.to_version}"
            ),
        )


@models_app.command("verify")
def verify_command(
    ref: Annotated[str | None, typer.Argument(help="One version; default: everything.")] = None,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every hash; exit 1 and list what is wrong when anything is."""
    with _registry(registry, as_json, store) as reg:
        problems = reg.verify(ref)
        leftovers = reg.leftovers() if ref is None else []
        payload = {
            "registry": reg.location,
            "ref": ref,
            "ok": not problems,
            "problems": [p.to_dict() for p in problems],
            "leftovers": [p.to_dict() for p in leftovers],
        }
    for p in leftovers:
        # Not versions and invisible to readers: worth cleaning, not a failure.
        typer.echo(f"note: {p.check}: {p.message}", err=True)
    if not problems:
        emit(
            payload,
            as_json,
            lambda: typer.echo(f"ok: every file matches its manifest ({ref or reg.location})"),
        )
        return
    for p in problems:
        typer.echo(f"{p.check}: {p.message}")
    typer.echo(f"regflow: verify found {len(problems)} problem(s)", err=True)
    if as_json:
        typer.echo(json.dumps(finite({"status": "failed", **payload}), default=str))
    raise typer.Exit(1)


@models_app.command("delete")
def delete_command(
    ref: Annotated[str, typer.Argument(help="name:version to delete.")],
    actor: ActorOption = None,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a version (refused while an alias points at it; its number is never reused)."""
    with _registry(registry, as_json, store) as reg:
        mv = reg.delete(ref, actor=actor)
        payload = {"deleted": mv.model_dump(mode="json")}
        emit(payload, as_json, lambda: typer.echo(f"deleted {mv.ref}"))


@models_app.command("gc")
def gc_command(
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove folders left by interrupted registrations or deletes."""
    with _registry(registry, as_json, store) as reg:
        removed = reg.gc()
        payload = {"removed": removed}
        emit(payload, as_json, lambda: typer.echo("\n".join(removed) or "nothing to remove"))


@models_app.command("migrate")
def migrate_command(
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upgrade the registry index to this regflow's schema (needed for PostgreSQL; a SQLite
    index upgrades itself when opened writable). Back the database up first."""
    from regflow.registry.location import migrate_index

    with expected_failures(as_json):
        before, after, where = migrate_index(registry)

    def human() -> None:
        if before == after:
            typer.echo(f"registry index {where} is at schema revision {after}: nothing to do")
        else:
            typer.echo(f"registry index {where}: schema revision {before or 'none'} -> {after}")

    emit({"registry": where, "from": before, "to": after}, as_json, human)


@models_app.command("export")
def export_command(
    ref: Annotated[str, typer.Argument(help="name, name:version or name@alias")],
    out: Annotated[
        Path, typer.Option("--out", help="File to write (mlflow: a directory not there yet).")
    ],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="joblib: regflow's predictor (needs regflow to load); sklearn: a "
            "LinearRegression; onnx: a float64 graph; mlflow: a pyfunc model directory.",
        ),
    ] = ExportFormat.joblib,
    registry: RegistryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a verified version (joblib and sklearn are pickles: trusted sources only)."""
    with _registry(registry, as_json, store) as reg:
        from regflow.registry.export import export_model, require_extra
        from regflow.registry.location import refuse_output_inside_registry

        require_extra(fmt.value)  # before reading anything: the fix is an install
        refuse_output_inside_registry(out, registry)
        predictor = reg.load(ref)
        result = export_model(predictor, fmt.value, out)
        payload = {
            "ref": ref,
            "model": {
                "name": predictor.name,
                "version": predictor.version,
                "ref": predictor.ref,
                "manifest_sha256": predictor.manifest_sha256,
            },
            "format": fmt.value,
            "out": str(result.path),
            "sidecar": str(result.sidecar) if result.sidecar is not None else None,
            "source": result.source,
        }
        emit(
            payload,
            as_json,
            lambda: typer.echo(
                f"wrote {result.path} ({predictor.ref}, {fmt.value}, "
                f"manifest sha256 {predictor.manifest_sha256})"
            ),
        )


def main() -> None:  # pragma: no cover - for `python -m regflow.cli.models`
    models_app()


if __name__ == "__main__":  # pragma: no cover
    main()
