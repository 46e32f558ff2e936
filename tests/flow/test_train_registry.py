"""Training registers every completed run; champion/challenger decides promotion."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regflow.flows.scoring import score
from regflow.flows.training import train
from regflow.registry import Registry

REPO = Path(__file__).resolve().parents[2]


def _train(data: Path, tmp_path: Path, registry: Path, **params: object):  # type: ignore[no-untyped-def]
    state = train(
        data=str(data),
        out=str(tmp_path / "runs"),
        registry=str(registry),
        return_state=True,
        **params,
    )
    assert state.is_completed(), state.message
    return state.result()


@pytest.fixture
def linear_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    frame["y"] = 2 * frame.a - frame.b + 1 + rng.normal(0, 0.3, 120)
    path = tmp_path / "linear.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.usefixtures("prefect_harness")
def test_first_run_becomes_champion_then_challengers_compete(
    linear_csv: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    first = _train(linear_csv, tmp_path, registry, target="y")
    assert (first.model_version, first.model_ref) == (1, "linear:1")
    assert first.promoted and first.champion_before is None and first.champion_after == 1
    assert first.promotion["rule"] == "no_champion"

    # Same data, same settings: nothing new (tests/flow/test_unchanged.py); forced, the
    # challenger ties the champion, and a tie is not promoted.
    second = _train(linear_csv, tmp_path, registry, target="y", force=True)
    assert second.model_version == 2 and not second.promoted
    assert second.promotion["rule"] == "tie"
    assert second.champion_before == 1 and second.champion_after == 1
    assert second.promotion["champion_metrics"]["mse"] == pytest.approx(
        second.promotion["challenger_metrics"]["mse"], rel=1e-6
    )

    # A better challenger (the default preset's optimum against the tutorial's SGD) wins.
    third = _train(linear_csv, tmp_path, registry, target="y", preset="seed", seed=1)
    assert third.model_version == 3 and not third.promoted  # SGD's 100 epochs lose
    assert third.promotion["rule"] == "mse_improvement"

    # A demanding improvement rule keeps the champion.
    fourth = _train(linear_csv, tmp_path, registry, target="y", min_improvement=0.5, force=True)
    assert not fourth.promoted and fourth.champion_after == 1

    # Other features: a different signature is never promoted automatically.
    fifth = _train(linear_csv, tmp_path, registry, target="y", features=["a"])
    assert not fifth.promoted and fifth.promotion["rule"] == "signature_mismatch"

    with Registry.open(registry) as reg:
        assert reg.get_alias("linear", "champion") == 1
        history = reg.history("linear")
        assert [(e.from_version, e.to_version) for e in history] == [(None, 1)]
        assert history[-1].actor == first.flow_run_id
        assert reg.verify() == []


@pytest.mark.usefixtures("prefect_harness")
def test_scoring_the_champion_reproduces_training(seed_csv: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    trained = _train(seed_csv, tmp_path, registry, target="y")
    out = tmp_path / "scores.csv"
    state = score(
        data=str(seed_csv),
        model="seed@champion",
        out=str(out),
        registry=str(registry),
        return_state=True,
    )
    assert state.is_completed(), state.message
    scored = pd.read_csv(out)
    expected = pd.read_parquet(trained.paths.predictions)["predicted"]
    prediction_column = "predicted"
    np.testing.assert_allclose(scored[prediction_column], expected, rtol=1e-12)
    assert "model_version" in scored.columns and set(scored["model_version"]) == {1}
    # seed.csv holds the target: the champion was monitored on it, and passed.
    result = state.result()
    assert result.status == "ok" and result.monitoring is not None
    assert result.monitoring.rows_labelled == 4 and result.monitoring_recorded
    assert [c.name for c in result.monitoring.checks] == ["mse_ratio", "psi:x"]
    with Registry.open(registry, create=False) as reg:
        assert [r.status for r in reg.list_monitoring("seed")] == ["ok"]

    # Without the target column there is nothing to judge: scores only.
    features_only = tmp_path / "x.csv"
    pd.read_csv(seed_csv)[["x"]].to_csv(features_only, index=False)
    unlabelled = score(
        data=str(features_only),
        model="seed@champion",
        out=str(tmp_path / "x-scores.csv"),
        registry=str(registry),
    )
    assert unlabelled.status == "ok" and unlabelled.monitoring is None


@pytest.mark.slow
def test_eight_concurrent_training_runs_get_eight_versions(
    prefect_harness: str, linear_csv: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    command = [
        sys.executable,
        "-m",
        "regflow.cli",
        "train",
        str(linear_csv),
        "--target",
        "y",
        "--registry",
        str(registry),
        "--out",
        str(tmp_path / "runs"),
        "--json",
        "--force",  # the same data eight times: otherwise later runs find it unchanged
    ]

    def run(_: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(8)))
    for done in results:
        assert done.returncode == 0, done.stderr[-2000:]
    outcomes = [json.loads(done.stdout.strip().splitlines()[-1]) for done in results]
    assert sorted(o["model"]["version"] for o in outcomes) == list(range(1, 9))
    with Registry.open(registry) as reg:
        assert [v.version for v in reg.list_versions("linear")] == list(range(1, 9))
        history = reg.history("linear", "champion")
        # Every move starts where the previous one ended: no lost update.
        for earlier, later in itertools.pairwise(history):
            assert later.from_version == earlier.to_version
        assert history[0].from_version is None
        assert reg.get_alias("linear", "champion") == history[-1].to_version
        assert sum(o["promoted"] for o in outcomes) == len(history)
        assert reg.verify() == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_tampered_champion_is_not_replaced_and_the_run_completes(
    seed_csv: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    first = _train(seed_csv, tmp_path, registry, target="y")
    with Registry.open(str(registry)) as reg:
        stored = Path(reg.store.location) / first.model / str(first.model_version)
    (stored / "plots" / "loss.png").write_bytes(b"changed")
    second = _train(seed_csv, tmp_path, registry, target="y")
    assert second.model_version == 2 and not second.promoted
    assert second.promotion["rule"] == "champion_unverified"
    assert "failed verification" in second.promotion["reason"]
    assert second.champion_after == 1
    with Registry.open(str(registry)) as reg:
        assert [v.version for v in reg.list_versions(first.model)] == [1, 2]
        assert reg.get_alias(first.model, "champion") == 1


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_that_cannot_register_leaves_no_run_folder(seed_csv: Path, tmp_path: Path) -> None:
    not_a_registry = tmp_path / "registry"
    not_a_registry.write_text("a file, not a registry folder")
    out = tmp_path / "runs"
    state = train(
        data={"path": str(seed_csv), "target": "y"},
        registry={"out": str(out), "registry": str(not_a_registry)},
        return_state=True,
    )
    assert state.is_failed()
    leftovers = list(out.rglob("*")) if out.exists() else []
    assert [p for p in leftovers if p.is_file()] == [], leftovers
