"""`regflow models ...` through Typer's CliRunner against a real registry folder."""

from __future__ import annotations

import json
import sys

import joblib
import numpy as np
import pytest
from runfolder import sample_frame
from typer.testing import CliRunner

from regflow.cli.models import models_app

runner = CliRunner()


def call(registry, *args: str, code: int = 0):
    result = runner.invoke(models_app, [*args, "--registry", registry.location])
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def two(registry, run_factory):
    registry.register("demo", run_factory(coef=[1.0], mse=0.5))
    registry.register("demo", run_factory(coef=[2.0], mse=0.1))
    return registry


def test_list_show_history(two):
    assert "demo\tversions=2\tlatest=2" in call(two, "list").stdout
    models = last_json(call(two, "list", "--json"))["models"]
    assert [(m["name"], m["versions"]) for m in models] == [("demo", 2)]
    versions = last_json(call(two, "list", "demo", "--json"))["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    shown = call(two, "show", "demo:1")
    assert "demo:1" in shown.stdout and "features:  x:float64" in shown.stdout
    payload = last_json(call(two, "show", "demo", "--json"))
    assert payload["version"]["version"] == 2 and payload["status"] == "ok"
    assert last_json(call(two, "history", "demo", "--json"))["events"] == []


def test_promote_rollback_and_audit_log(two):
    call(two, "promote", "demo:1", "--alias", "champion", "--reason", "baseline")
    event = last_json(call(two, "promote", "demo:2", "--reason", "lower mse", "--json"))["event"]
    assert (event["from_version"], event["to_version"], event["reason"]) == (1, 2, "lower mse")
    back = last_json(call(two, "rollback", "demo", "--json"))["event"]
    assert (back["action"], back["to_version"]) == ("rollback", 1)
    history = call(two, "history", "demo").stdout.strip().splitlines()
    assert len(history) == 3 and "baseline" in history[0] and "rollback" in history[2]
    assert two.get_alias("demo", "champion") == 1


def test_delete_verify_export(two, tmp_path):
    call(two, "promote", "demo:2")
    refused = call(two, "delete", "demo:2", "--json", code=1)
    assert last_json(refused)["error"] == "AliasInUseError"
    assert refused.stderr.startswith("regflow: ") and len(refused.stderr.splitlines()) == 1
    assert last_json(call(two, "delete", "demo:1", "--json"))["deleted"]["version"] == 1
    assert last_json(call(two, "verify", "--json"))["ok"] is True
    assert "ok" in call(two, "verify", "demo:2").stdout
    out = tmp_path / "m.joblib"
    payload = last_json(call(two, "export", "demo@champion", "--out", str(out), "--json"))
    assert payload["model"]["ref"] == "demo:2" and payload["format"] == "joblib"
    frame = sample_frame(["x"], n=5)
    np.testing.assert_array_equal(
        joblib.load(out).predict(frame), two.load("demo:2").predict(frame)
    )
    call(two, "export", "demo:2", "--out", str(out), "--format", "pmml", code=2)


def test_export_json_names_format_path_and_source(two, tmp_path):
    mv = two.resolve("demo:2")
    out = tmp_path / "m.onnx"
    payload = last_json(
        call(two, "export", "demo", "--out", str(out), "--format", "onnx", "--json")
    )
    assert (payload["format"], payload["out"]) == ("onnx", str(out))
    assert payload["source"]["ref"] == payload["model"]["ref"] == "demo:2"
    assert payload["source"]["manifest_sha256"] == mv.manifest_sha256
    assert payload["model"]["manifest_sha256"] == mv.manifest_sha256
    assert out.stat().st_size > 0

    model_dir = tmp_path / "mlflow"
    human = call(two, "export", "demo:1", "--out", str(model_dir), "--format", "mlflow")
    assert f"wrote {model_dir} (demo:1, mlflow, manifest sha256 " in human.stdout
    again = call(two, "export", "demo:1", "--out", str(model_dir), "--format", "mlflow", code=2)
    assert "already exists" in again.stderr and "Traceback" not in again.stderr

    inside = f"{two.store.location}/m.onnx"
    refused = call(two, "export", "demo", "--out", inside, "--format", "onnx", code=2)
    assert "inside the model registry" in refused.stderr
    assert two.verify() == []


@pytest.mark.parametrize(
    ("fmt", "module"), [("sklearn", "sklearn"), ("onnx", "onnx"), ("mlflow", "mlflow")]
)
def test_export_without_its_extra_names_the_extra(two, tmp_path, monkeypatch, fmt, module):
    # None in sys.modules is how Python itself reports a module that cannot be imported.
    monkeypatch.setitem(sys.modules, module, None)
    out = tmp_path / f"m.{fmt}"
    result = call(two, "export", "demo", "--out", str(out), "--format", fmt, "--json", code=2)
    assert result.stderr.splitlines() == [
        f"regflow: the {fmt} export needs the optional dependencies: "
        f"pip install 'regflow[{fmt}]' (import of {module} halted; None in sys.modules)"
    ]
    payload = last_json(result)
    assert (payload["error"], payload["extra"], payload["status"]) == (
        "MissingExtraError",
        fmt,
        "invalid",
    )
    assert not out.exists()


def test_errors_are_one_line_with_exit_codes(two):
    for args, code in (
        (("show", "nope"), 2),
        (("show", "demo:9"), 2),
        (("show", "demo@champion"), 2),
        (("show", "demo:x"), 2),
        (("rollback", "demo"), 2),
        (("delete", "demo"), 2),
    ):
        result = call(two, *args, "--json", code=code)
        assert result.stderr.startswith("regflow: ")
        assert last_json(result)["status"] == "invalid"


def test_gc(two):
    assert last_json(call(two, "gc", "--json"))["removed"] == []
