from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runfolder import make_run

from regflow.registry import Registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry.open(tmp_path / "registry")
    yield reg
    reg.close()


@pytest.fixture
def run_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1_000_000))

    def build(**kwargs) -> Path:
        return make_run(tmp_path / "runs" / f"run-{next(counter)}", **kwargs)

    return build
