"""The sklearn, onnx and mlflow exports predict what Registry.load predicts, and say where
they came from (the version and its manifest hash)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from runfolder import sample_frame

from regflow.errors import UsageError
from regflow.registry import Registry

FEATURES = ["a", "b c", "regflow/features"]  # a space, and one of the graph's internal names
COEF = [1.5, -0.25, 3.0e-3]
INTERCEPT = 3.0


@pytest.fixture
def demo(registry: Registry, run_factory: Any) -> Registry:
    registry.register("demo", run_factory(features=FEATURES, coef=COEF, intercept=INTERCEPT))
    return registry


def scoring_frame(n: int = 40) -> pd.DataFrame:
    """The features in another order than the signature's, plus a column models ignore."""
    frame = sample_frame(FEATURES[::-1], n=n, seed=7) * 1e3
    frame["id"] = range(n)
    return frame


def assert_close(got: Any, expected: np.ndarray) -> None:
    """1e-12 relative, as the issue asks (a matrix product rounds in another order)."""
    got = np.asarray(got, dtype=np.float64).ravel()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@pytest.fixture(scope="module")
def plain_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv without regflow that sees the dev venv's third-party packages.

    Its one `.pth` line adds the dev venv's site-packages to sys.path. Python runs the `.pth`
    files of its own site-packages only, so the editable install's finder (a `.pth` in the
    dev venv) never runs there: `import regflow` fails, as in a plain environment with
    scikit-learn, MLflow and numpy installed. Each child asserts that.
    """
    root = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root], check=True, timeout=120)
    python = root / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    deps = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    Path(site.stdout.strip(), "dev-deps.pth").write_text("".join(f"{p}\n" for p in deps))
    return python


def run_plain(python: Path, cwd: Path, body: str) -> dict[str, Any]:
    """Run `body` (which sets `result`) in the plain venv; its JSON result."""
    code = (
        "import importlib.util, json, sys\n"
        "assert importlib.util.find_spec('regflow') is None, 'regflow is importable'\n"
        f"{body}\n"
        "result['regflow_loaded'] = any(m.split('.')[0] == 'regflow' for m in sys.modules)\n"
        "print(json.dumps(result))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run(
        [python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("regflow_loaded") is False
    return result


def test_sklearn_export_is_a_fitted_linear_regression(demo: Registry, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    result = demo.export("demo", tmp_path / "demo.skl.joblib", "sklearn")
    mv = demo.resolve("demo:1")
    model = joblib.load(result.path)
    assert type(model) is LinearRegression
    assert model.feature_names_in_.tolist() == FEATURES and model.n_features_in_ == 3
    np.testing.assert_array_equal(model.coef_, COEF)
    assert model.intercept_ == INTERCEPT
    assert model.regflow_source["ref"] == "demo:1"
    assert model.regflow_source["manifest_sha256"] == mv.manifest_sha256

    sidecar = json.loads(Path(f"{result.path}.json").read_text())
    assert result.sidecar == Path(f"{result.path}.json")
    assert (sidecar["format"], sidecar["file"]) == ("sklearn", "demo.skl.joblib")
    assert sidecar["source"]["manifest_sha256"] == mv.manifest_sha256
    assert sidecar["sha256"] == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert "scikit-learn" in sidecar["libraries"]

    frame = scoring_frame()
    assert_close(model.predict(frame[FEATURES]), demo.load("demo").predict(frame))


def test_sklearn_export_loads_where_regflow_is_not_installed(
    demo: Registry, tmp_path: Path, plain_python: Path
) -> None:
    """The issue's failure: the joblib export needs regflow; the sklearn one does not."""
    sklearn_file = demo.export("demo", tmp_path / "demo.skl.joblib", "sklearn").path
    joblib_file = demo.export("demo", tmp_path / "demo.joblib", "joblib").path
    data = tmp_path / "frame.csv"
    scoring_frame().to_csv(data, index=False)
    result = run_plain(
        plain_python,
        tmp_path,
        f"""
import joblib, pandas as pd
model = joblib.load({str(sklearn_file)!r})
frame = pd.read_csv({str(data)!r})
result = {{
    "type": type(model).__module__ + "." + type(model).__name__,
    "source": model.regflow_source,
    "predicted": model.predict(frame[list(model.feature_names_in_)]).tolist(),
}}
try:
    joblib.load({str(joblib_file)!r})
except ModuleNotFoundError as exc:
    result["joblib_error"] = str(exc)
""",
    )
    assert result["type"] == "sklearn.linear_model._base.LinearRegression"
    assert result["source"]["manifest_sha256"] == demo.resolve("demo:1").manifest_sha256
    expected = demo.load("demo").predict(pd.read_csv(data))
    assert_close(result["predicted"], expected)
    assert "No module named 'regflow" in result["joblib_error"]


def test_onnx_export_has_named_inputs_and_predicts_like_the_registry(
    demo: Registry, tmp_path: Path
) -> None:
    import onnx
    import onnxruntime as ort

    result = demo.export("demo", tmp_path / "demo.onnx", "onnx")
    assert result.sidecar is None  # its source record is inside the file
    model = onnx.load(str(result.path))
    props = {p.key: p.value for p in model.metadata_props}
    mv = demo.resolve("demo:1")
    assert props["regflow.source.ref"] == "demo:1"
    assert props["regflow.source.manifest_sha256"] == mv.manifest_sha256
    assert json.loads(props["regflow.features"]) == FEATURES
    assert props["regflow.target"] == "y"

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    assert [i.name for i in inputs] == FEATURES
    assert {i.type for i in inputs} == {"tensor(double)"}
    assert [o.name for o in session.get_outputs()] == ["predicted"]

    frame = scoring_frame()
    feeds = {name: frame[[name]].to_numpy(dtype=np.float64) for name in FEATURES}
    (predicted,) = session.run(["predicted"], feeds)
    assert predicted.shape == (len(frame), 1) and predicted.dtype == np.float64
    assert_close(predicted, demo.load("demo").predict(frame))


def test_mlflow_export_is_a_pyfunc_model_with_signature_and_source(
    demo: Registry, tmp_path: Path
) -> None:
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException

    out = tmp_path / "mlflow-model"
    result = demo.export("demo", out, "mlflow")
    mv = demo.resolve("demo:1")
    mlmodel = yaml.safe_load((out / "MLmodel").read_text())
    assert "python_function" in mlmodel["flavors"]
    assert mlmodel["metadata"]["regflow_source"]["ref"] == "demo:1"
    assert mlmodel["metadata"]["regflow_source"]["manifest_sha256"] == mv.manifest_sha256
    assert result.source["manifest_sha256"] == mv.manifest_sha256
    columns = json.loads(mlmodel["signature"]["inputs"])
    assert [(c["name"], c["type"]) for c in columns] == [(f, "double") for f in FEATURES]
    example = json.loads((out / "input_example.json").read_text())
    assert example["columns"] == FEATURES and len(example["data"]) == 2
    # The model's code is the copied file, which imports no regflow.
    code = (out / "mlflow_pyfunc.py").read_text()
    assert "import regflow" not in code and "from regflow" not in code

    model = mlflow.pyfunc.load_model(str(out))
    frame = scoring_frame()
    # Summed column by column in feature order, like Predictor.predict: the same bits.
    np.testing.assert_array_equal(model.predict(frame), demo.load("demo").predict(frame))
    with pytest.raises(MlflowException, match="b c"):
        model.predict(frame.drop(columns=["b c"]))

    with pytest.raises(UsageError, match="already exists"):
        demo.export("demo", out, "mlflow")
    assert (out / "MLmodel").is_file()  # the refused export left the first one alone


def test_mlflow_export_loads_where_regflow_is_not_installed(
    demo: Registry, tmp_path: Path, plain_python: Path
) -> None:
    out = demo.export("demo", tmp_path / "mlflow-model", "mlflow").path
    data = tmp_path / "frame.csv"
    scoring_frame().to_csv(data, index=False)
    result = run_plain(
        plain_python,
        tmp_path,
        f"""
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model({str(out)!r})
result = {{
    "predicted": model.predict(pd.read_csv({str(data)!r})).tolist(),
    "source": model.metadata.metadata["regflow_source"],
}}
""",
    )
    assert result["source"]["ref"] == "demo:1"
    expected = demo.load("demo").predict(pd.read_csv(data))
    np.testing.assert_array_equal(result["predicted"], expected)


def test_registry_import_leaves_the_optional_libraries_alone() -> None:
    code = (
        "import sys, regflow.registry, regflow.registry.export, regflow.cli.models; "
        "print(sorted(m for m in ('sklearn', 'onnx', 'onnxruntime', 'mlflow') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
