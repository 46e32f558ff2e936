"""Export a verified registry version: joblib (regflow's own predictor) or a standard format.

- joblib:  `regflow.portable.PortableLinearModel`, pickled; loading it needs regflow.
- sklearn: a fitted `sklearn.linear_model.LinearRegression`, pickled with joblib; loading it
           needs scikit-learn only (export_sklearn.py).
- onnx:    a float64 graph with one named input per feature (export_onnx.py).
- mlflow:  an MLflow pyfunc model directory, with signature and input example
           (export_mlflow.py).

Each reproduces `Predictor.predict` in float64 and records its source: the version
(`name:version`) and the SHA-256 of its manifest. The two pickle formats also get a sidecar
`<out>.json` with that record and the file's SHA-256, so provenance can be checked before
unpickling (which runs code). The standard formats' libraries are optional extras imported
only here, lazily: without them `regflow.registry` still imports, and an export ends with
MissingExtraError naming the extra to install.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regflow import __version__
from regflow.errors import MissingExtraError, UsageError
from regflow.portable import PortableLinearModel
from regflow.registry.index import utcnow
from regflow.registry.predictor import Predictor

FORMATS = ("joblib", "sklearn", "onnx", "mlflow")
# format -> (the pyproject extra, the modules its export imports)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sklearn": ("sklearn", ("sklearn",)),
    "onnx": ("onnx", ("onnx",)),
    "mlflow": ("mlflow", ("mlflow",)),
}
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote, and which registry version it came from."""

    format: str
    path: Path
    source: dict[str, Any]
    sidecar: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": str(self.path),
            "sidecar": str(self.sidecar) if self.sidecar is not None else None,
            "source": dict(self.source),
        }


def source_record(predictor: Predictor) -> dict[str, Any]:
    """The exported version: reference, manifest hash, and when and by what it was exported."""
    return {
        "ref": predictor.ref,
        "name": predictor.name,
        "version": predictor.version,
        "manifest_sha256": predictor.manifest_sha256,
        "exported_at": utcnow(),
        "regflow_version": __version__,
    }


def require_extra(fmt: str) -> None:
    """MissingExtraError naming `regflow[<extra>]` when a module the export needs is absent."""
    if fmt not in EXTRAS:
        return
    extra, modules = EXTRAS[fmt]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(f"the {fmt} export", extra, str(exc)) from None


def write_atomically(out: Path, write: Callable[[str], object]) -> Path:
    """Call `write(temp_path)` beside `out`, then rename over it: readers never see half."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + SIDECAR_SUFFIX)


def write_sidecar(out: Path, fmt: str, source: dict[str, Any], libraries: dict[str, str]) -> Path:
    """`<out>.json`: the source record, the file's SHA-256 and the libraries that wrote it."""
    record = {
        "format": fmt,
        "file": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "source": source,
        "libraries": libraries,
    }
    text = json.dumps(record, indent=2) + "\n"
    return write_atomically(sidecar_path(out), lambda tmp: Path(tmp).write_text(text))


def to_portable(predictor: Predictor, source: dict[str, Any] | None = None) -> PortableLinearModel:
    w = predictor.weights
    return PortableLinearModel(
        feature_names=predictor.feature_names,
        target=predictor.target,
        coef=w.coef,
        intercept=w.intercept,
        x_mean=w.x_mean,
        x_scale=w.x_scale,
        y_mean=w.y_mean,
        y_scale=w.y_scale,
        source=source if source is not None else source_record(predictor),
    )


def export_joblib(predictor: Predictor, out: Path) -> Path:
    """Write the predictor with joblib.dump, atomically (temp file then rename)."""
    return _joblib(predictor, Path(out), source_record(predictor)).path


def _joblib(predictor: Predictor, out: Path, source: dict[str, Any]) -> ExportResult:
    import joblib

    portable = to_portable(predictor, source)
    write_atomically(out, lambda tmp: joblib.dump(portable, tmp))
    versions = {"regflow": __version__, "joblib": joblib.__version__}
    sidecar = write_sidecar(out, "joblib", source, versions)
    return ExportResult("joblib", out, source, sidecar)


def export_model(predictor: Predictor, fmt: str, out: Path | str) -> ExportResult:
    """Export `predictor` as `fmt` (one of FORMATS) to `out` (mlflow: a new directory)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if predictor.signature.categorical:
        # Each format takes one numeric input per coefficient; the levels would be lost.
        raise UsageError(
            f"{predictor.ref} has categorical features "
            f"({', '.join(predictor.signature.categorical)}): export supports numeric "
            "features only; score it with `regflow predict` or regflow.predict"
        )
    require_extra(fmt)
    out = Path(out)
    source = source_record(predictor)
    if fmt == "joblib":
        return _joblib(predictor, out, source)
    if fmt == "sklearn":
        from regflow.registry.export_sklearn import export_sklearn

        return export_sklearn(predictor, out, source)
    if fmt == "onnx":
        from regflow.registry.export_onnx import export_onnx

        return export_onnx(predictor, out, source)
    from regflow.registry.export_mlflow import export_mlflow

    return export_mlflow(predictor, out, source)
