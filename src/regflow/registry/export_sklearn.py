"""`--format sklearn`: a fitted `sklearn.linear_model.LinearRegression`, saved with joblib.

The registry's coefficients are already in original units, so the estimator is "fitted" by
setting the attributes `fit` would set (`coef_`, `intercept_`, `feature_names_in_`,
`n_features_in_`); it predicts `X @ coef_ + intercept_` like any LinearRegression. The
pickle holds only scikit-learn and numpy objects, so loading it needs scikit-learn and
joblib, not regflow (the joblib format pickles regflow's own class). `regflow_source` is a
plain dict, kept on the estimator as well as in the sidecar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from regflow.registry.export import ExportResult, write_atomically, write_sidecar
from regflow.registry.predictor import Predictor


def to_sklearn(predictor: Predictor, source: dict[str, Any]) -> Any:
    """A LinearRegression that predicts what `predictor` predicts (float64)."""
    from sklearn.linear_model import LinearRegression

    model = LinearRegression()
    weights = predictor.weights
    model.coef_ = np.asarray(weights.coef, dtype=np.float64).copy()
    model.intercept_ = np.float64(weights.intercept)
    # An object array of str, as fit stores the column names of a DataFrame.
    model.feature_names_in_ = np.asarray(predictor.feature_names, dtype=object)
    model.n_features_in_ = len(predictor.feature_names)
    model.regflow_source = dict(source)
    return model


def export_sklearn(predictor: Predictor, out: Path, source: dict[str, Any]) -> ExportResult:
    import joblib
    import sklearn

    model = to_sklearn(predictor, source)
    write_atomically(out, lambda tmp: joblib.dump(model, tmp))
    versions = {
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": np.__version__,
    }
    sidecar = write_sidecar(out, "sklearn", source, versions)
    return ExportResult("sklearn", out, source, sidecar)
