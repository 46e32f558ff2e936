"""Tampering seen from `regflow predict` (the scoring flow): refused, never executed.

test_registry_integrity.py covers verify/load/export on each kind of change; these tests
follow the same changes through scoring, and plant pickles where scoring and gc look.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
from pathlib import Path

import pandas as pd
import pytest
from rawindex import edit_index
from runfolder import sample_frame
from typer.testing import CliRunner

from regflow.cli.models import models_app
from regflow.flows.scoring import score
from regflow.registry import IntegrityError
from regflow.registry.store import MANIFEST_FILE

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _writable(path: Path) -> Path:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def _flip(path: Path) -> None:
    data = bytearray(_writable(path).read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _rehash_into_manifest(folder: Path, name: str) -> None:
    manifest = json.loads((folder / MANIFEST_FILE).read_bytes())
    for entry in manifest["files"]:
        if entry["path"] == name:
            data = (folder / name).read_bytes()
            entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    _writable(folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def _score(registry, ref: str, data: Path, out: Path):  # type: ignore[no-untyped-def]
    state = score(
        data=str(data), model=ref, out=str(out), registry=registry.location, return_state=True
    )
    return state, state.result(raise_on_failure=False)


@pytest.fixture
def scoring_input(tmp_path: Path) -> Path:
    data = tmp_path / "input.csv"
    sample_frame(["x"], n=5).to_csv(data, index=False)
    return data


def test_predict_refuses_every_kind_of_tampering(registry, run_factory, scoring_input, tmp_path):
    for _ in range(4):
        registry.register("demo", run_factory())
    store = Path(registry.store.location) / "demo"
    _flip(store / "2" / "model.safetensors")  # weights changed
    _flip(store / "3" / "model.safetensors")  # ... and the manifest re-hashed to match
    _rehash_into_manifest(store / "3", "model.safetensors")
    edit_index(registry, "UPDATE model_versions SET metrics = '{}' WHERE version = 4")

    expected = {2: "model.safetensors", 3: "manifest", 4: "metrics"}
    for version, named in expected.items():
        out = tmp_path / f"scores-{version}.csv"
        state, error = _score(registry, f"demo:{version}", scoring_input, out)
        assert state.name == "IntegrityError" and isinstance(error, IntegrityError), version
        assert error.exit_code == 1 and named in str(error) and "refusing" in str(error)
        assert not out.exists()
    state, result = _score(registry, "demo:1", scoring_input, tmp_path / "ok.csv")
    assert state.is_completed() and result.rows == 5


class _Trap:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.sentinel), "w"))


def test_pickles_planted_where_scoring_and_gc_look_never_run(
    registry, run_factory, scoring_input, tmp_path
):
    sentinel = tmp_path / "PWNED"
    payload = pickle.dumps(_Trap(sentinel))
    registry.register("demo", run_factory())
    registry.register("demo", run_factory())
    registry.promote("demo:1")
    store = Path(registry.store.location)
    root = store.parent  # the registry's folder (SQLite), or the store's parent
    # The weights of version 2 become a pickle, re-hashed into its manifest as an attacker
    # with write access to the files (not the index) would.
    (_writable(store / "demo" / "2" / "model.safetensors")).write_bytes(payload)
    _rehash_into_manifest(store / "demo" / "2", "model.safetensors")
    for planted in (
        root / "model.pkl",
        store / "model.joblib",
        store / "demo" / "champion.pkl",
        store / ".staging" / "predictor.pickle",
    ):
        planted.write_bytes(payload)

    state, result = _score(registry, "demo@champion", scoring_input, tmp_path / "s.csv")
    assert state.is_completed() and result.model.ref == "demo:1"
    state, error = _score(registry, "demo:2", scoring_input, tmp_path / "s2.csv")
    assert state.name == "IntegrityError" and "manifest" in str(error)
    runner = CliRunner()
    for args in (["verify"], ["verify", "demo:2"], ["gc"], ["show", "demo:2"]):
        runner.invoke(models_app, [*args, "--registry", registry.location])
    with pytest.raises(IntegrityError):
        registry.load("demo:2")
    assert pd.read_csv(tmp_path / "s.csv")["model_version"].tolist() == [1] * 5
    assert not sentinel.exists()
    pickle.loads(payload)  # the trap works, so its absence above means nothing unpickled it
    assert sentinel.exists()
