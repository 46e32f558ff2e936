"""Registration, immutability, references, lineage and crash safety (real SQLite files)."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runfolder import make_run, sample_frame

from regflow.errors import InvalidInputError
from regflow.registry import (
    InvalidReferenceError,
    ModelRef,
    NotFoundError,
    Registry,
    RegistryError,
    parse_ref,
)
from regflow.registry.store import MANIFEST_FILE

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def test_register_copies_every_file_with_a_manifest(registry, run_factory):
    run = run_factory(coef=[2.0], intercept=1.0)
    mv = registry.register("demo", run, description="first", tags={"team": "a"}, actor="me")

    assert (mv.name, mv.version, mv.status, mv.actor) == ("demo", 1, "ready", "me")
    assert mv.signature.feature_names == ["x"] and mv.signature.target.name == "y"
    assert mv.metrics["all"]["mse"] == pytest.approx(0.25)
    assert mv.data_sha256 == "ab" * 32
    assert mv.run_id == mv.lineage["flow_run_id"]
    assert mv.lineage["parameters"]["lr"] == 0.01
    assert mv.lineage["git_commit"] is None or len(mv.lineage["git_commit"]) == 40
    folder = Path(registry.store.location) / mv.files
    stored = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    source = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert stored == sorted([*source, MANIFEST_FILE])
    for rel in source:
        assert (folder / rel).read_bytes() == (run / rel).read_bytes()
        assert not os.stat(folder / rel).st_mode & stat.S_IWUSR  # read-only: immutable
    assert registry.get_model("demo").description == "first"
    assert registry.verify() == []


def test_versions_are_immutable_and_numbered_in_order(registry, run_factory):
    first = registry.register("demo", run_factory(coef=[1.0]))
    frame = sample_frame(["x"], 4)
    before = registry.load("demo:1").predict(frame)
    second = registry.register("demo", run_factory(coef=[5.0]))
    assert (first.version, second.version) == (1, 2)
    np.testing.assert_array_equal(registry.load("demo:1").predict(frame), before)
    assert registry.resolve("demo").version == 2  # name alone: latest
    assert [v.version for v in registry.list_versions("demo")] == [1, 2]
    assert registry.get_model("demo").latest_version == 2


def test_model_names_are_separate_sequences(registry, run_factory):
    assert registry.register("a", run_factory()).version == 1
    assert registry.register("b", run_factory()).version == 1
    assert registry.register("a", run_factory()).version == 2
    assert [m.name for m in registry.list_models()] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("demo", ModelRef("demo")),
        ("demo:3", ModelRef("demo", version=3)),
        ("demo@champion", ModelRef("demo", alias="champion")),
        ("my.model-2_x@staging", ModelRef("my.model-2_x", alias="staging")),
    ],
)
def test_parse_ref(text, expected):
    assert parse_ref(text) == expected
    assert str(parse_ref(text)) == text


@pytest.mark.parametrize(
    "text", ["", "demo:", "demo:0", "demo:-1", "demo:x", "demo@", "demo@1", "a@b:1", "../x", "a/b"]
)
def test_parse_ref_rejects(text):
    with pytest.raises(InvalidReferenceError) as info:
        parse_ref(text)
    assert info.value.exit_code == 2


def test_resolve_unknown_things_is_not_found(registry, run_factory):
    registry.register("demo", run_factory())
    for ref in ("nope", "demo:7", "demo@champion"):
        with pytest.raises(NotFoundError) as info:
            registry.resolve(ref)
        assert info.value.exit_code == 2
    with pytest.raises(NotFoundError, match="models: demo"):
        registry.resolve("nope")


def test_invalid_run_folder_registers_nothing(registry, run_factory, tmp_path):
    run = run_factory()
    (run / "model.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="model card"):
        registry.register("demo", run)
    with pytest.raises(InvalidInputError, match="missing"):
        registry.register("demo", tmp_path)
    other = run_factory(features=["a", "b"])
    (other / "model.safetensors").write_bytes((run_factory() / "model.safetensors").read_bytes())
    with pytest.raises(InvalidInputError, match="coefficients"):
        registry.register("demo", other)
    with pytest.raises(InvalidReferenceError):
        registry.register("bad/name", run_factory())
    linked = run_factory()
    (linked / "outside.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(RegistryError, match="symlink"):
        registry.register("demo", linked)
    reserved = run_factory()
    (reserved / MANIFEST_FILE).write_text("{}")
    with pytest.raises(RegistryError, match="may not contain"):
        registry.register("demo", reserved)
    assert registry.list_models() == []
    assert registry.store.list_staging() == []


def test_failure_after_publish_rolls_everything_back(registry, run_factory, monkeypatch):
    store = registry.store
    original = store.publish

    def publish_then_fail(staged, name, version):
        original(staged, name, version)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "publish", publish_then_fail)
    with pytest.raises(RuntimeError):
        registry.register("demo", run_factory())
    monkeypatch.undo()
    # No row, no folder, and the model row was rolled back with the version.
    assert registry.list_models() == []
    assert store.list_versions() == []
    assert registry.verify() == []
    assert registry.register("demo", run_factory()).version == 1


CRASH = """
import os, sys
sys.path[:0] = [{repo!r}, {here!r}]
from regflow.registry import Registry
from regflow.registry.store import LocalDirectoryStore
original = LocalDirectoryStore.publish
def publish_then_die(self, staged, name, version):
    original(self, staged, name, version)
    os._exit(9)  # the process dies between the rename and the commit
LocalDirectoryStore.publish = publish_then_die
Registry.open({reg!r}).register("demo", {run!r})
"""


def test_crash_between_rename_and_commit_leaves_no_visible_version(tmp_path):
    reg_dir, run = tmp_path / "reg", make_run(tmp_path / "run")
    Registry.open(reg_dir).close()
    code = CRASH.format(repo=str(REPO), here=str(HERE), reg=str(reg_dir), run=str(run))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 9, done.stderr.decode()
    with Registry.open(reg_dir) as reg:
        assert reg.list_models() == []  # the uncommitted transaction is gone
        assert reg.verify() == []  # an orphan is no version: the registry is consistent
        assert [p.check for p in reg.leftovers()] == ["orphan_folder"]
        assert reg.register("demo", run).version == 1  # the orphan is set aside
        assert reg.verify() == []
        reg.promote("demo:1")
        assert reg.gc(staging_older_than_s=0) != []
        assert reg.verify() == []
        assert reg.load("demo@champion").version == 1


def test_open_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGFLOW_REGISTRY", raising=False)
    with Registry.open() as reg:
        assert Path(reg.location) == tmp_path / "artifacts" / "registry"
    assert (tmp_path / "artifacts" / "registry" / "index.db").exists()
    monkeypatch.setenv("REGFLOW_REGISTRY", str(tmp_path / "env-reg"))
    with Registry.open() as reg:
        assert Path(reg.location) == tmp_path / "env-reg"
    with Registry.open(f"sqlite:///{tmp_path / 'db' / 'idx.db'}") as reg:
        reg.register("demo", make_run(tmp_path / "run"))
        assert (tmp_path / "db" / "store" / "demo" / "1" / MANIFEST_FILE).exists()
    # The driver is checked first (naming the package to install), then the file store.
    has_driver = importlib.util.find_spec("psycopg") is not None
    with pytest.raises(InvalidReferenceError, match="store" if has_driver else "pip install"):
        Registry.open("postgresql://user:secret@localhost/db")
    mode = sqlite3.connect(tmp_path / "env-reg" / "index.db").execute("PRAGMA journal_mode")
    assert mode.fetchone()[0] == "wal"


def test_missing_registry_is_not_created_by_readers(tmp_path):
    from typer.testing import CliRunner

    from regflow.cli.models import models_app

    missing = tmp_path / "typo"
    with pytest.raises(NotFoundError, match="no registry"):
        Registry.open(missing, create=False)
    result = CliRunner().invoke(models_app, ["list", "--registry", str(missing)])
    assert result.exit_code == 2 and "no registry" in result.stderr
    assert not missing.exists()


def test_registry_imports_neither_prefect_nor_torch():
    code = (
        "import sys, regflow.registry, regflow.registry.export; "
        "print(sorted(m for m in ('prefect', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
