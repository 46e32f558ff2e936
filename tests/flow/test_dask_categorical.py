"""--categorical on the dask engine: levels from every file, indicators built by the workers,
the same model as the local engine's on the same rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regflow.errors import InvalidInputError
from regflow.flows.training import train

pytestmark = pytest.mark.usefixtures("prefect_harness")

FILES = 6


def cities(rows: int = 1200) -> pd.DataFrame:
    """x, a city (level "C" only in the fifth file) and y with a city effect."""
    rng = np.random.default_rng(21)
    frame = pd.DataFrame({"x": rng.normal(size=rows)})
    frame["city"] = rng.choice(["A", "B"], size=rows)
    frame.loc[800:999, "city"] = "C"
    effect = frame["city"].map({"A": 0.0, "B": 1.5, "C": -2.0})
    frame["y"] = 2.0 * frame.x + effect + 4.0 + rng.normal(0, 0.3, rows)
    return frame


def write(tmp_path: Path, frame: pd.DataFrame) -> tuple[Path, Path]:
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), FILES)):
        frame.iloc[part].to_csv(folder / f"part-{i}.csv", index=False)
    whole = tmp_path / "whole.csv"
    frame.to_csv(whole, index=False)
    return folder, whole


def run(tmp_path: Path, data: Path, engine: str, **options: Any) -> Any:
    return train(
        data=str(data), target="y", model="cities", engine=engine, dtype="float64",
        categorical=["city"], out=str(tmp_path / f"runs-{engine}"),
        registry=str(tmp_path / f"registry-{engine}"), return_state=True, **options,
    )  # fmt: skip


def test_categorical_on_dask_equals_local(tmp_path: Path, cluster_address: str) -> None:
    folder, whole = write(tmp_path, cities())
    local = run(tmp_path, whole, "local")
    dask = run(tmp_path, folder, "dask", dask_address=cluster_address)
    assert local.is_completed() and dask.is_completed(), (local.message, dask.message)
    mine, theirs = dask.result(), local.result()
    assert mine.features == theirs.features == ["x", "city=B", "city=C"]
    assert mine.categorical == theirs.categorical == {"city": ["A", "B", "C"]}
    for name, value in theirs.training.coefficients.items():
        assert abs(mine.training.coefficients[name] - value) <= 1e-8 * abs(value)
    for split, metrics in theirs.evaluation.metrics.items():
        assert abs(mine.evaluation.metrics[split].mse - metrics.mse) <= 1e-8 * metrics.mse
    card = json.loads(Path(mine.paths.card).read_text())
    theirs_card = json.loads(Path(theirs.paths.card).read_text())
    assert card["signature"] == theirs_card["signature"]


def test_a_missing_level_names_its_file_row_and_column(
    tmp_path: Path, cluster_address: str
) -> None:
    frame = cities()
    frame.loc[205, "city"] = None  # the second file's sixth row
    folder, _ = write(tmp_path, frame)
    state = run(tmp_path, folder, "dask", dask_address=cluster_address)
    assert state.is_failed()
    err = state.result(raise_on_failure=False)
    assert isinstance(err, InvalidInputError), err
    found = [(Path(p.file or "").name, p.column, p.check, p.rows) for p in err.problems]
    assert found == [("part-1.csv", "city", "not_nullable", [6])]
    assert not (tmp_path / "runs-dask").exists()


def test_too_many_levels_across_the_files(tmp_path: Path, cluster_address: str) -> None:
    frame = cities()
    frame["city"] = [f"id-{i}" for i in range(len(frame))]  # 200 a file, 1200 in all
    folder, _ = write(tmp_path, frame)
    state = run(tmp_path, folder, "dask", dask_address=cluster_address, max_levels=500)
    err = state.result(raise_on_failure=False)
    assert isinstance(err, InvalidInputError), err
    assert [(p.column, p.check, p.count) for p in err.problems] == [("city", "max_levels", 1200)]
