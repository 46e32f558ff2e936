"""The scoring flow and `regflow predict`, inside the session's Prefect test harness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from runfolder import sample_frame
from typer.testing import CliRunner

from regflow.cli.predict import predict_command
from regflow.errors import InvalidInputError
from regflow.flows.scoring import score
from regflow.registry import NotFoundError, Registry
from regflow.tasks.score import artifact_key, default_model_ref

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_training_run_predictions_are_reproduced_by_champion(seed_csv, tmp_path):
    from regflow.flows.training import train

    outcome = train(data=str(seed_csv), target="y", features=["x"], out=str(tmp_path / "runs"))
    with Registry.open(tmp_path / "registry") as reg:
        mv = reg.register("seed", outcome.paths.run_dir, actor=outcome.flow_run_id)
        reg.promote(mv.ref, reason="first model")

    result = score(
        data=str(seed_csv), registry=str(tmp_path / "registry"), out=str(tmp_path / "s.csv")
    )
    assert result.model.ref == "seed:1" and result.model.requested == "seed@champion"
    scored = pd.read_csv(result.out)
    trained = pd.read_parquet(outcome.paths.predictions)
    np.testing.assert_allclose(scored["predicted"], trained["predicted"], rtol=1e-12, atol=1e-12)
    assert list(scored.columns) == ["x", "y", "predicted", "model_version", "model_ref"]
    assert set(scored["model_version"]) == {1} and set(scored["model_ref"]) == {"seed:1"}
    assert result.ignored_columns == ["y"]


def test_parquet_output_and_artifact(registry, run_factory, tmp_path):
    registry.register("demo", run_factory(coef=[2.0], intercept=1.0))
    registry.register("demo", run_factory(coef=[3.0], intercept=0.0))
    registry.promote("demo:1")
    frame = sample_frame(["x"], n=6)
    frame["id"] = [f"r{i}" for i in range(6)]
    data = tmp_path / "input.parquet"
    frame.to_parquet(data)

    result = score(
        data=str(data),
        model="demo@champion",
        registry=registry.location,
        out=str(tmp_path / "out" / "scores.parquet"),
    )
    out = pd.read_parquet(result.out)
    np.testing.assert_allclose(out["predicted"], frame["x"] * 2.0 + 1.0)
    assert out["model_version"].tolist() == [1] * 6 and out["id"].tolist() == frame["id"].tolist()
    assert (result.format, result.rows, result.artifact_key) == ("parquet", 6, "demo-scores")

    latest = score(
        data=str(data), model="demo", registry=registry.location, out=str(tmp_path / "latest.csv")
    )
    assert latest.model.version == 2

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["demo-scores"]))
        )
    assert found and found[0].type == "table"


def test_failures_end_in_named_states(registry, run_factory, tmp_path):
    registry.register("demo", run_factory(features=["a", "b"]))
    data = tmp_path / "demo.csv"
    pd.DataFrame({"a": [1.0, None], "c": [1, 2]}).to_csv(data, index=False)

    state = score(data=str(data), model="demo:1", registry=registry.location, return_state=True)
    assert state.is_failed() and state.name == "InvalidInput"
    error = state.result(raise_on_failure=False)
    assert isinstance(error, InvalidInputError)
    assert {p.check for p in error.problems} == {"column_in_dataframe", "not_nullable"}

    state = score(data=str(data), registry=registry.location, return_state=True)  # demo@champion
    assert state.name == "NotFound"
    assert isinstance(state.result(raise_on_failure=False), NotFoundError)


def test_predict_command(registry, run_factory, tmp_path):
    registry.register("demo", run_factory(coef=[2.0], intercept=1.0))
    registry.promote("demo:1")
    data = tmp_path / "demo.csv"
    sample_frame(["x"], n=3).to_csv(data, index=False)
    app = typer.Typer()
    app.command("predict")(predict_command)
    app.command("noop")(lambda: None)  # keep "predict" a subcommand, as in `regflow predict`
    runner = CliRunner()
    out = tmp_path / "p.csv"
    where = ["--registry", registry.location]
    done = runner.invoke(app, ["predict", str(data), "--out", str(out), *where, "--json"])
    assert done.exit_code == 0, done.output
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    assert payload["status"] == "ok" and payload["model"]["ref"] == "demo:1"
    assert payload["flow_run_id"] and Path(payload["out"]) == out

    bad = runner.invoke(app, ["predict", str(data), "--model", "demo@nope", *where, "--json"])
    assert bad.exit_code == 2
    assert json.loads(bad.stdout.strip().splitlines()[-1])["error"] == "NotFoundError"
    assert "Traceback" not in bad.stderr and bad.stderr.startswith("regflow: ")
    bad = runner.invoke(app, ["predict", str(data), "--out", "x.txt", *where])
    assert bad.exit_code == 2 and "csv" in bad.stderr


def test_helpers():
    assert default_model_ref("data/seed.csv") == "seed@champion"
    assert default_model_ref("s3://bucket/houses.parquet?version=2") == "houses@champion"
    assert artifact_key("My_Model.v2") == "my-model-v2-scores"
