"""A training run on a multi-file dataset (a folder of CSV files) in the local engine: the
card and the registry's lineage list the files, and the fingerprint is the dataset's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regflow.flows.training import train
from regflow.io.datasets import dataset_sha256, describe_file, expand_dataset
from regflow.registry import Registry

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_folder_of_files_trains_and_lists_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    folder = tmp_path / "weekly"
    folder.mkdir()
    for week in range(6):
        x = rng.normal(size=20)
        frame = pd.DataFrame({"x": x, "y": 3 * x + 1 + rng.normal(0, 0.1, 20)})
        frame.to_csv(folder / f"week-{week}.csv", index=False)
    registry = tmp_path / "registry"
    state = train(
        data=str(folder),
        target="y",
        model="weekly",
        engine="local",  # the dask engine has its own tests (test_dask_engine.py)
        out=str(tmp_path / "runs"),
        registry=str(registry),
        return_state=True,
    )
    assert state.is_completed(), state.message
    outcome = state.result()

    files = [describe_file(path) for path in expand_dataset(str(folder))]
    card = json.loads(Path(outcome.paths.card).read_text())
    assert card["data"]["rows"] == 120 and card["data"]["sha256"] == dataset_sha256(files)
    listed = [{"path": f.path, "size": f.size, "sha256": f.sha256, "rows": f.rows} for f in files]
    assert card["data"]["files"] == listed
    with Registry.open(registry) as reg:
        version = reg.resolve(outcome.model_ref)
        assert version.data_sha256 == dataset_sha256(files)
        assert version.lineage["data"]["files"] == listed
        assert reg.verify() == []
