"""The register step takes the champion the run verified at its start (the dask engine
loads it to score it in the evaluation pass) instead of reading its files again, while the
alias still names that version; otherwise it loads, and verifies, what the alias names now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runfolder import make_run

from regflow.registry import Predictor, Registry
from regflow.registry.store import MANIFEST_FILE
from regflow.schemas.model_card import CARD_FILE, ModelCard
from regflow.tasks.register import CHAMPION, register_scored

SCORES = {"mse": 0.25, "rmse": 0.5, "mae": 0.4, "r2": 0.9, "n": 12.0}


def _register(root: Path, run: Path, verified: Predictor | None) -> dict[str, Any]:
    signature = ModelCard.model_validate_json((run / CARD_FILE).read_text()).signature
    _, result, _ = register_scored(
        str(root), "demo", str(run), str(run), signature, SCORES, lambda champion: SCORES,
        "all", target_variance=1.0, verified_champion=verified,
    )  # fmt: skip
    return result.decision.model_dump()


def _tamper(reg: Registry, version: int) -> None:
    folder = Path(reg.store.location) / "demo" / str(version)
    victim = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST_FILE
                  and p.suffix == ".parquet")  # fmt: skip
    victim.chmod(0o644)
    victim.write_bytes(b"changed")


@pytest.fixture
def champion(tmp_path: Path) -> tuple[Path, Predictor]:
    root = tmp_path / "registry"
    with Registry.open(str(root)) as reg:
        reg.register("demo", make_run(tmp_path / "run-1"))
        reg.set_alias("demo", CHAMPION, 1)
        loaded = reg.load("demo:1")  # what the run verified at its start
        _tamper(reg, 1)  # after that: only a second read would notice
    return root, loaded


def test_the_champion_verified_by_this_run_is_not_read_again(champion, tmp_path):
    root, verified = champion
    decided = _register(root, make_run(tmp_path / "run-2"), verified)
    assert decided["rule"] != "champion_unverified" and decided["champion_metrics"] == SCORES


def test_without_it_the_champion_is_read_and_fails_verification(champion, tmp_path):
    root, _ = champion
    decided = _register(root, make_run(tmp_path / "run-2"), None)
    assert decided["rule"] == "champion_unverified" and decided["champion_metrics"] is None


def test_a_champion_that_moved_since_is_loaded_afresh(champion, tmp_path):
    root, verified = champion
    with Registry.open(str(root)) as reg:
        reg.register("demo", make_run(tmp_path / "run-2"))
        reg.set_alias("demo", CHAMPION, 2, expected=1)
        _tamper(reg, 2)
    decided = _register(root, make_run(tmp_path / "run-3"), verified)
    assert decided["champion_version"] == 2 and decided["rule"] == "champion_unverified"
