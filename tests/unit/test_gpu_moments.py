"""The torch route for a partition's moments (a GPU worker's) against the numpy sweep: the
same code runs here on the CPU device; tests/gpu runs it on CUDA."""

from __future__ import annotations

import numpy as np

from regflow.partitioned.gpu_moments import torch_moments
from regflow.stats.moment_sweeps import Data, partition_moments


def check_equal(device: str) -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5000, 3)) * [1.0, 1e3, 1e-2] + [5.0, -2e4, 0.0]
    y = x @ [1.0, 2e-3, 40.0] + rng.normal(size=5000)
    rows = np.flatnonzero(rng.random(5000) < 0.7)
    for index in (None, rows):
        data = Data(list(x.T), y, index)
        mine = torch_moments(data, device, block_rows=1024)  # several blocks, merged
        theirs = partition_moments(data)
        assert mine.count == theirs.count
        np.testing.assert_allclose(mine.mean, theirs.mean, rtol=1e-13)
        np.testing.assert_allclose(mine.cross, theirs.cross, rtol=1e-11)
        np.testing.assert_array_equal(mine.lo, theirs.lo)
        np.testing.assert_array_equal(mine.hi, theirs.hi)


def test_torch_moments_equal_the_numpy_sweep() -> None:
    check_equal("cpu")


def test_no_rows_is_the_merge_identity() -> None:
    data = Data([np.zeros(0)], np.zeros(0))
    assert torch_moments(data, "cpu").count == 0
