"""Every file is checked against the manifest, and the manifest against the index."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
from rawindex import edit_index
from typer.testing import CliRunner

from regflow.cli.models import models_app
from regflow.registry import IntegrityError, Registry
from regflow.registry.store import MANIFEST_FILE


def _version_dir(reg: Registry, name: str = "demo", version: int = 1) -> Path:
    return Path(reg.store.location) / name / str(version)


def _flip_byte(path: Path, offset: int = -1) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_changed_weight_byte_fails_verify_and_load(registry, run_factory):
    registry.register("demo", run_factory())
    registry.register("demo", run_factory())
    _flip_byte(_version_dir(registry) / "model.safetensors")

    problems = registry.verify()
    assert [(p.check, p.file) for p in problems] == [("file_changed", "demo/1/model.safetensors")]
    assert registry.verify("demo:2") == []
    with pytest.raises(IntegrityError, match=r"model\.safetensors") as info:
        registry.load("demo:1")
    assert info.value.exit_code == 1
    with pytest.raises(IntegrityError):
        registry.export_joblib("demo:1", registry.store.location + "/../x.joblib")
    registry.load("demo:2")  # the other version is fine

    runner = CliRunner()
    where = ["--registry", registry.location]
    result = runner.invoke(models_app, ["verify", *where, "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["ok"] is False and payload["problems"][0]["check"] == "file_changed"
    result = runner.invoke(models_app, ["export", "demo:1", "--out", "x.joblib", *where])
    assert result.exit_code == 1 and "model.safetensors" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_extra_and_resized_files(registry, run_factory):
    registry.register("demo", run_factory())
    folder = _version_dir(registry)
    (folder / "plots" / "fit.png").unlink()
    (folder / "notes.txt").write_text("added later")
    os.chmod(folder / "predictions.parquet", stat.S_IRUSR | stat.S_IWUSR)
    with open(folder / "predictions.parquet", "ab") as fh:
        fh.write(b"\0")
    checks = sorted((p.check, p.file) for p in registry.verify())
    assert checks == [
        ("file_changed", "demo/1/predictions.parquet"),
        ("file_extra", "demo/1/notes.txt"),
        ("file_missing", "demo/1/plots/fit.png"),
    ]
    with pytest.raises(IntegrityError, match=r"and 2 more"):
        registry.load("demo:1")


def test_tampered_manifest_is_detected(registry, run_factory):
    registry.register("demo", run_factory())
    folder = _version_dir(registry)
    # Re-hash a changed weights file into the manifest: the index still knows better.
    _flip_byte(folder / "model.safetensors")
    manifest_path = folder / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_bytes())
    data = (folder / "model.safetensors").read_bytes()
    for entry in manifest["files"]:
        if entry["path"] == "model.safetensors":
            entry["sha256"] = hashlib.sha256(data).hexdigest()
    os.chmod(manifest_path, stat.S_IRUSR | stat.S_IWUSR)
    manifest_path.write_text(json.dumps(manifest))
    assert [p.check for p in registry.verify()] == ["manifest_changed"]
    with pytest.raises(IntegrityError, match="manifest"):
        registry.load("demo:1")
    manifest_path.unlink()
    assert [p.check for p in registry.verify()] == ["file_missing"]


def test_tampered_index_row_is_detected(registry, run_factory):
    registry.register("demo", run_factory())
    # someone edits the metrics in the database
    edit_index(registry, 'UPDATE model_versions SET metrics = \'{"all": {"mse": 0.0}}\'')
    assert [p.check for p in registry.verify()] == ["index_row_changed"]
    with pytest.raises(IntegrityError, match="metrics"):
        registry.load("demo:1")
    edit_index(registry, "UPDATE model_versions SET manifest_sha256 = :h", h="0" * 64)
    checks = {p.check for p in registry.verify()}
    assert {"index_row_changed", "manifest_changed"} <= checks


def test_row_without_folder_is_reported(registry, run_factory):
    registry.register("demo", run_factory())
    shutil.rmtree(_version_dir(registry))
    assert [p.check for p in registry.verify()] == ["folder_missing"]
    with pytest.raises(IntegrityError):
        registry.load("demo")


class _Trap:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (str(self.sentinel), "w"))


def test_planted_pickles_are_never_executed(registry, run_factory, tmp_path):
    sentinel = tmp_path / "PWNED"
    payload = pickle.dumps(_Trap(sentinel))
    run = run_factory()
    (run / "model.pkl").write_bytes(payload)  # registered as an ordinary file
    registry.register("demo", run)
    registry.register("demo", run_factory())
    for name in ("model.pkl", "model.joblib", "predictor.pickle"):
        planted = _version_dir(registry, version=2) / name
        planted.write_bytes(payload)  # planted later, beside the weights
    (Path(registry.store.location) / "demo" / "evil.pkl").write_bytes(payload)

    registry.list_models()
    registry.list_versions("demo")
    registry.resolve("demo:1")
    registry.load("demo:1").predict(pd.DataFrame({"x": [1.0]}))
    registry.card("demo:1")
    with pytest.raises(IntegrityError, match="not in the manifest"):
        registry.load("demo:2")
    assert {p.check for p in registry.verify()} == {"file_extra"}
    registry.export_joblib("demo:1", tmp_path / "out.joblib")
    runner = CliRunner()
    for args in (["list"], ["list", "demo"], ["show", "demo:1"], ["verify"], ["history", "demo"]):
        runner.invoke(models_app, [*args, "--registry", registry.location])
    assert not sentinel.exists()
    pickle.loads(payload)  # the trap works, so its absence above means nothing unpickled it
    assert sentinel.exists()
