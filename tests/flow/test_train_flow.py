"""The train flow end to end inside one Prefect test harness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regflow.errors import GateStoppedError, InvalidInputError
from regflow.flows.training import train
from regflow.schemas.params import TrainParams
from regflow.schemas.results import TrainOutcome

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _run(data: Path | str, out: Path, **flat: object):  # type: ignore[no-untyped-def]
    # The flow takes grouped sections, as a deployment or the UI's form passes them.
    params = TrainParams.from_flat({"data": str(data), "out": str(out), **flat})
    state = train(**dict(params), return_state=True)
    return state, state.result(raise_on_failure=False)


def test_flat_parameters_of_older_deployments_still_train(seed_csv: Path, tmp_path: Path) -> None:
    state = train(
        data=str(seed_csv), target="y", features=["x"], model="flat", out=str(tmp_path),
        return_state=True,
    )  # fmt: skip
    assert state.is_completed(), state.message
    outcome = state.result()
    assert outcome.model == "flat" and outcome.features == ["x"]


def test_grouped_parameters_are_validated_in_the_flow(seed_csv: Path, tmp_path: Path) -> None:
    state = train(
        data={"path": str(seed_csv), "target": "y"},
        training={"lr": -1.0},
        registry={"out": str(tmp_path)},
        return_state=True,
    )
    assert state.is_failed() and state.name == "InvalidInput"
    assert "training.lr" in str(state.message)


def test_seed_default_preset_publishes_everything(seed_csv: Path, tmp_path: Path) -> None:
    state, outcome = _run(seed_csv, tmp_path, target="y", features=["x"])
    assert state.is_completed(), state.message
    assert isinstance(outcome, TrainOutcome)
    run_dir = Path(outcome.paths.run_dir)
    assert run_dir.parent == tmp_path / "seed"
    predictions = pd.read_parquet(outcome.paths.predictions)
    assert list(predictions.columns) == ["true", "predicted", "residual", "split"]
    np.testing.assert_allclose(predictions["predicted"], [2, 4, 6, 7], atol=1e-3)
    assert set(predictions["split"]) == {"all"}  # 4 rows: no holdout, and the report says so
    assert "no holdout" in outcome.evaluation.holdout_note
    assert set(outcome.paths.plots) == {"loss", "fit", "predicted_vs_true", "residuals"}
    for plot in outcome.paths.plots.values():
        assert Path(plot).read_bytes().startswith(b"\x89PNG")
    card = json.loads((run_dir / "model.json").read_text())
    assert card["signature"]["features"] == [{"name": "x", "dtype": "float64"}]
    assert card["coefficients"]["weights"]["x"] == pytest.approx(2.0, abs=1e-4)
    assert card["flow_run_id"] == outcome.flow_run_id
    assert card["data"]["sha256"] == outcome.data_sha256
    assert {"torch", "prefect", "pandas", "numpy"} <= set(card["library_versions"])
    assert outcome.flow_run_name.startswith("train-seed-")
    assert not list(tmp_path.glob("seed/.tmp-*"))


def test_artifacts_have_stable_keys(seed_csv: Path, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _run(seed_csv, tmp_path, target="y", features=["x"], model="artifact-check")
    with get_client(sync_client=True) as client:
        for key in ("artifact-check-metrics", "artifact-check-report"):
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )
            assert found, key
        table = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["artifact-check-metrics"]))
        )[0]
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        assert rows[0]["split"] == "all"


def test_seed_preset_runs_the_tutorial_loop(seed_csv: Path, tmp_path: Path) -> None:
    state, outcome = _run(seed_csv, tmp_path, target="y", preset="seed")
    assert state.is_completed(), state.message
    assert outcome.training.epochs_run == 100
    assert outcome.training.optimizer == "sgd" and outcome.training.lr == 0.01


def test_no_relationship_is_gated_and_publishes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data = tmp_path / "noise.csv"
    pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)}).to_csv(data, index=False)
    state, error = _run(data, tmp_path / "runs", target="y")
    assert state.is_failed() and state.name == "WeakCorrelation"
    assert isinstance(error, GateStoppedError)
    assert "min_abs_r" in state.message or "alpha" in state.message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.safetensors"))


def test_invalid_file_lists_its_failures(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("x,y\n1,2\nfoo,4\n3,\n4,8\n")
    state, error = _run(data, tmp_path / "runs", target="y")
    assert state.is_failed() and state.name == "InvalidInput"
    assert isinstance(error, InvalidInputError)
    checks = {(p.column, p.check) for p in error.problems}
    assert ("x", "coerce_dtype") in checks and ("y", "not_nullable") in checks
    assert not (tmp_path / "runs").exists()


NIST_OPTIMUM = ["Longley", "Pontius", "NoInt1", "NoInt2"]


def _digits(estimate: float, certified: float) -> float:
    if estimate == certified:
        return 15.0
    return float(-np.log10(abs(estimate - certified) / abs(certified)))


@pytest.mark.parametrize("name", NIST_OPTIMUM)
def test_nist_reference_and_trained_optimum(name: str, nist_dir: Path, tmp_path: Path) -> None:
    certified = json.loads((nist_dir / "certified.json").read_text())[name]
    state, outcome = _run(
        nist_dir / f"{name}.csv",
        tmp_path,
        target="y",
        holdout=0.0,
        no_intercept=not certified["intercept"],
    )
    assert state.is_completed(), state.message
    ev = outcome.evaluation
    params = [p["estimate"] for p in certified["parameters"]]
    slopes = params[1:] if certified["intercept"] else params
    for feature, value in zip(outcome.features, slopes, strict=True):
        assert _digits(ev.ols_coefficients[feature], value) >= 9, feature
    if certified["intercept"]:
        assert _digits(ev.ols_intercept, params[0]) >= 9
    # The trained model reaches the least-squares optimum.
    relative_ok = ev.optimality_gap is not None and ev.optimality_gap <= 1e-4
    assert relative_ok or ev.optimality_gap_abs <= 1e-8


def test_filip_is_reported_ill_conditioned(nist_dir: Path, tmp_path: Path) -> None:
    state, outcome = _run(nist_dir / "Filip.csv", tmp_path, target="y", holdout=0.0)
    assert state.is_completed(), state.message
    kinds = {w.kind for w in outcome.gate.warnings}
    assert "ill_conditioned" in kinds
    assert not outcome.evaluation.reference_trusted
    assert outcome.training.dtype == "float64"
