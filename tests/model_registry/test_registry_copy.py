"""`regflow models copy`: a registry moved whole (versions, files, aliases, audit log,
monitoring), verified at the destination; damaged sources and name clashes are refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from regflow.cli import app
from regflow.registry import IntegrityError, InvalidReferenceError, Registry
from regflow.registry.copying import copy_registry

runner = CliRunner()


@pytest.fixture
def source(tmp_path: Path, run_factory: Callable[..., Path]) -> Path:
    root = tmp_path / "source"
    with Registry.open(root) as reg:
        for coef in (1.0, 2.0, 3.0):
            reg.register("demo", run_factory(coef=[coef]))
        reg.register("beta", run_factory(name="beta"))
        reg.promote("demo:1", reason="first")
        reg.promote("demo:2", reason="better")
        reg.promote("demo:3", reason="best")
        reg.rollback("demo", reason="regressed")  # champion back to 2
        reg.delete("demo:1")
        reg.record_monitoring("demo", 2, status="ok", rows=4, failed=[], report={"a": 1})
    return root


def _snapshot(root: Path | str, store: str | None = None) -> dict[str, object]:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.5]})
    with Registry.open(root, store=store, create=False) as reg:
        versions = {
            m.name: [
                (v.version, v.status, v.manifest_sha256, v.aliases)
                for v in reg.list_versions(m.name, include_deleted=True)
            ]
            for m in reg.list_models()
        }
        return {
            "versions": versions,
            "history": [
                (e.alias, e.action, e.from_version, e.to_version, e.reason)
                for e in reg.history("demo")
            ],
            "monitoring": [(r.version, r.status, r.report) for r in reg.list_monitoring("demo")],
            "predictions": reg.load("demo@champion").predict(frame).tolist(),
            "problems": reg.verify(),
        }


@pytest.mark.parametrize("store", ["folder", "memory"])
def test_copy_brings_everything_across(source: Path, tmp_path: Path, store: str) -> None:
    dst_store = None if store == "folder" else f"memory://regflow-copy-{uuid.uuid4().hex}"
    with (
        Registry.open(source, create=False) as src,
        Registry.open(tmp_path / "dst", store=dst_store) as dst,
    ):
        report = copy_registry(src, dst)
    assert (report.models, report.versions, report.deleted_versions) == (["beta", "demo"], 3, 1)
    assert report.alias_events == 4 and report.monitoring_records == 1  # 3 moves, 1 rollback
    before, after = _snapshot(source), _snapshot(tmp_path / "dst", dst_store)
    assert after == before and after["problems"] == []
    # The copy keeps numbering: the next version is 4, never a reused 1.
    with Registry.open(tmp_path / "dst", store=dst_store) as dst:
        assert dst.latest_version_number("demo") == 3


def test_clashing_names_and_damaged_sources_are_refused(source: Path, tmp_path: Path) -> None:
    dst_root = tmp_path / "dst"
    with Registry.open(source, create=False) as src, Registry.open(dst_root) as dst:
        copy_registry(src, dst)
        with pytest.raises(InvalidReferenceError, match="already holds beta, demo"):
            copy_registry(src, dst)
    (source / "store" / "demo" / "3" / "model.json").write_text("{}")
    fresh = tmp_path / "fresh"
    with Registry.open(source, create=False) as src, Registry.open(fresh) as dst:
        with pytest.raises(
            IntegrityError,
            match=r"demo:3: refusing to use this version: model\.json does not match",
        ):
            copy_registry(src, dst)
        assert dst.list_models() == [] and dst.leftovers() == []
        assert dst.store.list_staging() == []


def test_cli_copies_and_verifies(source: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    done = runner.invoke(app, ["models", "copy", str(source), str(dst), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["verified"] is True and result["versions"] == 3
    again = runner.invoke(app, ["models", "copy", str(source), str(dst)])
    assert again.exit_code == 2 and "already holds" in again.stderr
    missing = runner.invoke(app, ["models", "copy", str(tmp_path / "nope"), str(dst)])
    assert missing.exit_code == 2


def test_a_local_registry_moves_into_a_shared_one(source: Path, registry_uri: str) -> None:
    # registry_uri: a folder (SQLite), or a fresh PostgreSQL database with its files in
    # $REGFLOW_REGISTRY_STORE: the "local registry into a shared one".
    done = runner.invoke(app, ["models", "copy", str(source), registry_uri, "--json"])
    assert done.exit_code == 0, done.output
    assert _snapshot(Path(registry_uri) if "://" not in registry_uri else registry_uri) == (
        _snapshot(source)
    )
