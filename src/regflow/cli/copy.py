"""`regflow models copy SRC DST`: a whole registry into another, verified afterwards."""

from __future__ import annotations

from typing import Annotated

import typer

from regflow.cli.models import JsonOption, emit
from regflow.cli.output import expected_failures, fail
from regflow.errors import RegflowError


def copy_command(
    source: Annotated[str, typer.Argument(help="The registry to copy: a folder or index URL.")],
    destination: Annotated[
        str, typer.Argument(help="The registry to copy into (made if it is a new folder).")
    ],
    src_store: Annotated[
        str | None, typer.Option("--src-store", help="The source's file store, if not beside it.")
    ] = None,
    dst_store: Annotated[
        str | None,
        typer.Option(
            "--dst-store", help="The destination's file store: a folder or an fsspec URL."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy every model of SOURCE (versions, files, aliases, audit log, monitoring records)
    into DESTINATION, then verify every file there; exit 1 if anything does not verify."""
    from regflow.registry import Registry
    from regflow.registry.copying import copy_registry

    with (
        expected_failures(as_json),
        Registry.open(source, store=src_store, create=False) as src,
        Registry.open(destination, store=dst_store) as dst,
    ):
        report = copy_registry(src, dst)
        problems = dst.verify()
        where = dst.location
    if problems:
        details = "; ".join(p.describe() for p in problems[:5])
        fail(RegflowError(f"the copy in {where} does not verify: {details}"), as_json, {})
    payload = {
        "source": source,
        "destination": where,
        "models": report.models,
        "versions": report.versions,
        "deleted_versions": report.deleted_versions,
        "files": report.files,
        "bytes": report.bytes,
        "alias_events": report.alias_events,
        "monitoring_records": report.monitoring_records,
        "verified": True,
    }
    emit(
        payload,
        as_json,
        lambda: typer.echo(
            f"copied {len(report.models)} models ({report.versions} versions, "
            f"{report.deleted_versions} deleted, {report.files} files, {report.bytes} bytes, "
            f"{report.alias_events} alias moves, {report.monitoring_records} monitoring "
            f"records) into {where}; every file verified"
        ),
    )
