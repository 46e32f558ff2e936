"""A GPU worker's partition moments (the dask engine with --device cuda) against numpy's."""

from __future__ import annotations

import numpy as np
import pytest

from regflow.partitioned.gpu_moments import torch_moments
from regflow.stats.moment_sweeps import Data, partition_moments

pytestmark = pytest.mark.gpu


def test_cuda_moments_equal_the_numpy_sweep() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50_000, 4)) * [1.0, 1e3, 1e-2, 7.0] + [5.0, -2e4, 0.0, 1.0]
    y = x @ [1.0, 2e-3, 40.0, -1.0] + rng.normal(size=50_000)
    data = Data(list(x.T), y, np.flatnonzero(rng.random(50_000) < 0.8))
    mine, theirs = torch_moments(data, "cuda", block_rows=8192), partition_moments(data)
    assert mine.count == theirs.count
    np.testing.assert_allclose(mine.mean, theirs.mean, rtol=1e-13)
    np.testing.assert_allclose(mine.cross, theirs.cross, rtol=1e-11)
