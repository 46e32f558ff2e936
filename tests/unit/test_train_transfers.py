"""The trainer moves the data to its device once, before the first epoch, never per epoch.

torch.profiler counts every `aten::to` / `aten::_to_copy` (what .to(), .cpu() and .cuda()
dispatch to) with its input's shape (benchmarks/transfers.py). On the CPU the one move is a
no-op `.to(cpu)`, but a per-epoch `.to()` or `.cpu()` of the data would still be counted, so
the test holds the trainer to one data-sized move at 10 and at 100 epochs alike.
tests/gpu/ repeats it on CUDA, where the profiler also counts the memcpys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.transfers import count_transfers, moved_once

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"a": rng.normal(size=5_000), "b": rng.normal(3, 2, size=5_000)})
    data["y"] = 2 * data.a - 0.5 * data.b + 1 + rng.normal(0, 0.1, size=5_000)
    return data


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_data_moves_do_not_grow_with_epochs(frame: pd.DataFrame, preset: str) -> None:
    few = count_transfers(frame, ["a", "b"], "y", preset, 10, CPU)
    many = count_transfers(frame, ["a", "b"], "y", preset, 100, CPU)
    assert (few.epochs, many.epochs) == (10, 100)
    assert few.data_moves == many.data_moves == 1, (few, many)
    assert moved_once(few, many)
    # Parameter- and scalar-sized reads do grow (the loss each epoch): the counter sees them.
    assert many.small_moves > few.small_moves


def test_too_few_rows_to_tell_data_from_parameters() -> None:
    tiny = pd.DataFrame({"a": [1.0, 2.0], "y": [1.0, 2.0]})
    with pytest.raises(ValueError, match="too few rows"):
        count_transfers(tiny, ["a"], "y", "seed", 1, CPU)
