"""The joblib export predicts what Registry.load predicts, in a process without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from runfolder import sample_frame

REPO = Path(__file__).resolve().parents[2]

NO_TORCH = """
import importlib.abc, json, sys
class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this process")
sys.meta_path.insert(0, BlockTorch())
sys.path.insert(0, {repo!r})
import joblib, pandas as pd
model = joblib.load({file!r})
frame = pd.read_csv({data!r})
print(json.dumps({{
    "frame": model.predict(frame).tolist(),
    "array": model.predict(frame[model.feature_names].to_numpy()).tolist(),
    "torch": "torch" in sys.modules,
    "registry": "registry" in sys.modules,
}}))
"""


def test_joblib_export_matches_registry_without_torch(registry, run_factory, tmp_path):
    registry.register("demo", run_factory(features=["a", "b"], coef=[1.5, -0.25], intercept=3.0))
    out = registry.export_joblib("demo", tmp_path / "model.joblib")
    frame = sample_frame(["b", "a"], n=20, seed=3)
    frame["id"] = range(20)
    expected = registry.load("demo").predict(frame)

    model = joblib.load(out)
    np.testing.assert_array_equal(model.predict(frame), expected)
    assert model.source["ref"] == "demo:1" and model.feature_names == ["a", "b"]
    with pytest.raises(ValueError, match="missing"):
        model.predict(frame[["a"]])
    with pytest.raises(ValueError, match="2-D"):
        model.predict(np.ones(3))

    data = tmp_path / "frame.csv"
    frame.to_csv(data, index=False)
    code = NO_TORCH.format(repo=str(REPO), file=str(out), data=str(data))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert not got["torch"] and not got["registry"]
    reread = pd.read_csv(data)
    np.testing.assert_allclose(got["frame"], registry.load("demo").predict(reread), rtol=0, atol=0)
    np.testing.assert_allclose(got["array"], got["frame"], rtol=0, atol=0)
