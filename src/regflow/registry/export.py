"""Export a verified registry version as a torch-free joblib predictor."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from regflow.portable import PortableLinearModel
from regflow.registry.index import utcnow
from regflow.registry.predictor import Predictor

FORMATS = ("joblib",)


def to_portable(predictor: Predictor) -> PortableLinearModel:
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
        source={
            "ref": predictor.ref,
            "name": predictor.name,
            "version": predictor.version,
            "manifest_sha256": predictor.manifest_sha256,
            "exported_at": utcnow(),
        },
    )


def export_joblib(predictor: Predictor, out: Path) -> Path:
    """Write the predictor with joblib.dump, atomically (temp file then rename)."""
    import joblib

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        joblib.dump(to_portable(predictor), tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
