"""tests/gpu: run only where CUDA is; elsewhere every test here is skipped, saying why.

`pytest -m gpu tests/gpu` runs them on a GPU machine (scripts/gpu_check.sh does). Each module
marks its tests `gpu`; the skip is added here at collection, before any fixture (such as the
session's Prefect harness) would start for nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
NO_CUDA = "needs CUDA: torch.cuda.is_available() is False"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(skip)
