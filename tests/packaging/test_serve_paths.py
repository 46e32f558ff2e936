"""Fast checks of how `regflow serve` finds flows and data without a checkout.

The slow end-to-end version, from an installed wheel, is test_wheel.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

from regflow.deployments.serve import (
    BUNDLED_DATA,
    DEFAULT_PREFECT_FILE,
    load_specs,
    module_and_name,
    to_runner_deployment,
    with_bundled_data,
)

SEED = str(BUNDLED_DATA / "seed.csv")


@pytest.mark.parametrize(
    ("entrypoint", "expected"),
    [
        ("flows/training.py:train", ("regflow.flows.training", "train")),
        ("src/regflow/cli/__init__.py:main", ("regflow.cli", "main")),
        ("regflow/flows/scoring.py:score", ("regflow.flows.scoring", "score")),
        ("regflow.flows.scoring.score", ("regflow.flows.scoring", "score")),
    ],
)
def test_file_entrypoints_map_to_package_modules(
    entrypoint: str, expected: tuple[str, str]
) -> None:
    assert module_and_name(entrypoint) == expected


def test_default_prefect_file_and_data_are_the_packaged_ones() -> None:
    assert DEFAULT_PREFECT_FILE.parent.name == "deployments"
    assert DEFAULT_PREFECT_FILE.is_file()
    assert Path(SEED).is_file()


def test_bundled_example_data_is_found_from_any_directory(tmp_path: Path) -> None:
    flat = {"data": "data/seed.csv", "features": ["x"], "model": "seed"}
    assert with_bundled_data(flat, tmp_path) == {**flat, "data": SEED}
    grouped = {"data": {"path": "data/seed.csv", "target": "y"}, "runs": [1, "data/seed.csv"]}
    assert with_bundled_data(grouped, tmp_path) == {
        "data": {"path": SEED, "target": "y"},
        "runs": [1, SEED],
    }
    # Not bundled, or not under data/: the yaml's value, relative to wherever runs start.
    for value in ("data/other.csv", "seed.csv", "elsewhere/seed.csv", "/abs/data/seed.csv"):
        assert with_bundled_data(value, tmp_path) == value


def test_local_data_wins_over_the_bundled_copy(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "seed.csv").write_text("x,y\n1,2\n")
    assert with_bundled_data({"data": "data/seed.csv"}, tmp_path) == {"data": "data/seed.csv"}


@pytest.mark.parametrize("name", ["nightly", "hourly"])
def test_served_entrypoints_load_with_prefects_loader(name: str) -> None:
    # A served run imports its flow by this module path, wherever `serve` was started.
    spec = next(s for s in load_specs() if s.name == name)
    deployment = to_runner_deployment(spec)
    assert deployment.entrypoint == spec.module_entrypoint
    flow: Flow[..., Any] = load_flow_from_entrypoint(
        deployment.entrypoint, use_placeholder_flow=False
    )
    assert flow.name == deployment.flow_name
