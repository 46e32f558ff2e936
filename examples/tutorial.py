"""regflow from Python: the tutorial's model, then a real dataset, then predictions.

1. The classic "Linear regression with PyTorch" tutorial (x = 1, 2, 3, 3.5; y = 2, 4, 6, 7)
   from a pandas DataFrame, with the tutorial's own settings (`preset="seed"`: SGD, lr 0.01,
   100 epochs). Training the same frame again registers nothing: the input is unchanged.
2. scikit-learn's diabetes dataset (442 patients, 10 features; it ships inside the
   scikit-learn wheel, nothing is downloaded), trained with the default preset.
3. Predictions for a few patients with the diabetes model's champion.

Run it after `make setup` (scikit-learn comes with the dev extras):

    .venv/bin/python examples/tutorial.py

Each call is a Prefect flow run: with PREFECT_API_URL set (`make ui`), the runs show in the
Prefect UI. The registry and run folders go to a temporary folder that is removed at the end,
unless --registry and --out name folders to keep.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_diabetes

import regflow
from regflow.schemas.results import TrainOutcome


def tutorial(where: dict[str, str]) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 3.5], "y": [2.0, 4.0, 6.0, 7.0]})
    # force: train even if a kept registry (--registry) already has this model.
    outcome = regflow.train(frame, target="y", model="seed", preset="seed", force=True, **where)
    assert isinstance(outcome, TrainOutcome)
    t = outcome.training
    print(f"tutorial: {outcome.model_ref} ({t.optimizer}, lr {t.lr:g}, {t.epochs_run} epochs)")
    print(f"  weight {t.coefficients['x']:.4f}, bias {t.intercept:.4f}")
    predicted = ", ".join(f"{row['predicted']:.2f}" for row in outcome.predictions_preview)
    print(f"  true [2, 4, 6, 7], predicted [{predicted}]")
    # The same rows give the same bytes and settings: nothing new to register.
    again = regflow.train(frame, target="y", model="seed", preset="seed", **where)
    print(f"  the same frame again: {again.status} ({again.model_ref})")


def diabetes(where: dict[str, str]) -> None:
    data = load_diabetes(as_frame=True).frame  # 10 features and the column "target"
    outcome = regflow.train(
        data, target="target", model="diabetes", data_name="sklearn-diabetes", force=True,
        **where,
    )  # fmt: skip
    assert isinstance(outcome, TrainOutcome)
    holdout = outcome.evaluation.metrics["holdout"]
    features, device = len(outcome.features), outcome.training.device
    print(f"diabetes: {outcome.model_ref} on {features} features, trained on {device}")
    print(f"  holdout n={holdout.n} R² {holdout.r2:.3f} RMSE {holdout.rmse:.1f}")
    print(f"  champion: {'yes' if outcome.promoted else 'no'} ({outcome.promotion['reason']})")

    patients = data.drop(columns="target").head(5)
    scores = regflow.predict(patients, model="diabetes@champion", registry=where["registry"])
    print(f"predictions with diabetes@champion ({scores['model_ref'].iloc[0]}):")
    for row, value in scores["predicted"].items():
        print(f"  patient {row}: {value:.1f}")

    with regflow.Registry.open(where["registry"]) as reg:
        models = reg.list_models()
    print("registry:", ", ".join(f"{m.name}: {m.versions} version(s)" for m in models))


def main() -> None:
    parser = argparse.ArgumentParser(description="regflow from Python: tutorial, diabetes")
    parser.add_argument("--registry", help="registry folder to keep (default: temporary)")
    parser.add_argument("--out", help="folder for run folders to keep (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regflow-example-") as scratch:
        where = {
            "registry": args.registry or str(Path(scratch) / "registry"),
            "out": args.out or str(Path(scratch) / "runs"),
        }
        tutorial(where)
        diabetes(where)


if __name__ == "__main__":
    main()
