"""The plain script a user writes instead of regflow: read the CSV, fit scikit-learn, print."""

from __future__ import annotations

import json
import sys

import pandas as pd
from sklearn.linear_model import LinearRegression


def main(path: str, target: str) -> None:
    frame = pd.read_csv(path)
    features = [c for c in frame.columns if c != target]
    model = LinearRegression().fit(frame[features], frame[target])
    print(json.dumps({"coef": model.coef_.tolist(), "intercept": float(model.intercept_)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
