"""The retraining loop against a real server, the deployments of prefect.yaml and a worker:

train v1 -> score labelled data like the training data (ok, no event) -> score shifted data
(degraded event) -> the automation creates a training run -> a worker runs it on new data ->
v2 becomes champion -> the promotion trigger creates a scoring run of v2 -> it scores with v2.

Runs we create go to our own queue. Runs the automations create go to the deployments'
`default` queue; the worker takes them from there once every other run waiting in that
queue (scheduled ones, earlier automation runs) has been deleted and the schedules paused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.client.schemas.objects import Deployment, FlowRun
from prefect.types._datetime import now
from support import QUEUE, read_events, related_runs, run_worker, wait_for

from regflow.deployments.local_server import LocalServer
from regflow.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MODEL = "seed"
DEGRADED = "regflow.model.degraded"
PROMOTED = "regflow.model.promoted"


def _runs(client: SyncPrefectClient, deployment: Deployment, known: set[Any]) -> list[FlowRun]:
    """Runs of `deployment` that no schedule and no test created: the automations' runs."""
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        limit=200,
    )
    return [r for r in runs if not r.auto_scheduled and r.id not in known]


def _only_run_waiting_in_default(
    client: SyncPrefectClient, deployed: dict[str, Deployment], keep: FlowRun
) -> None:
    """Pause the schedules and delete every other run not yet started in the default queue."""
    for deployment in deployed.values():
        for schedule in client.read_deployment_schedules(deployment.id):
            client.update_deployment_schedule(deployment.id, schedule.id, active=False)
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            limit=200,
        )
        for run in runs:
            waiting = run.state is not None and run.state.is_scheduled()
            if run.id != keep.id and waiting and run.work_queue_name == "default":
                client.delete_flow_run(run.id)


def test_degraded_champion_is_retrained_and_replaced(
    server: LocalServer,
    client: SyncPrefectClient,
    deployed: dict[str, Deployment],
    tmp_path: Path,
) -> None:
    registry, out = tmp_path / "registry", tmp_path / "runs"
    env = {"REGFLOW_REGISTRY": str(registry)}
    nightly, hourly = deployed["nightly"], deployed["hourly"]
    known: set[Any] = {r.id for d in deployed.values() for r in _runs(client, d, set())}
    outputs = {"registry": {"out": str(out), "registry": str(registry)}}

    def ours(deployment: Deployment, parameters: dict[str, Any]) -> FlowRun:
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters=parameters, work_queue_name=QUEUE
        )
        known.add(run.id)
        final, output = run_worker(server, client, run, QUEUE, env)
        assert final.state is not None and final.state.is_completed(), output[-6000:]
        return final

    # v1 from the nightly deployment's own data (y = 2x): the champion.
    ours(nightly, outputs)
    with Registry.open(registry, create=False) as reg:
        assert reg.get_alias(MODEL, "champion") == 1

    # Labelled data like the training data: monitored, ok, no event.
    started = now("UTC")
    rng = np.random.default_rng(3)
    like = tmp_path / "like.csv"
    x = rng.choice([1.0, 2.0, 3.0, 3.5], 40)  # drawn from the training rows' distribution
    pd.DataFrame({"x": x, "y": 2 * x}).to_csv(like, index=False)
    scoring = {"model": f"{MODEL}@champion", "registry": str(registry)}
    ok_run = ours(hourly, {"data": str(like), "out": str(tmp_path / "ok.csv"), **scoring})

    # Shifted data (x far outside training, y on another line): degraded.
    shifted = tmp_path / "shifted.csv"
    x = rng.uniform(10, 20, 40)
    pd.DataFrame({"x": x, "y": 3 * x + 1}).to_csv(shifted, index=False)
    bad_run = ours(hourly, {"data": str(shifted), "out": str(tmp_path / "bad.csv"), **scoring})
    resource = f"regflow.model.{MODEL}"
    (degraded,) = wait_for(
        "the degraded event", lambda: read_events(client, DEGRADED, started, resource), 30
    )
    assert related_runs(degraded) == {str(bad_run.id)}  # the like-for-like run raised nothing
    assert degraded.payload["ref"] == f"{MODEL}:1"
    assert set(degraded.payload["failed"]) == {"mse_ratio", "psi:x"}
    assert degraded.payload["thresholds"] == {"mse_ratio": 1.5, "psi:x": 0.25}
    assert degraded.payload["values"]["psi:x"] > 0.25
    with Registry.open(registry, create=False) as reg:
        records = reg.list_monitoring(MODEL)
    assert [(r.run_id, r.status) for r in records] == [
        (str(ok_run.id), "ok"),
        (str(bad_run.id), "degraded"),
    ]

    # The automation answers with a training run of the nightly deployment.
    (retrain,) = wait_for("the retraining run", lambda: _runs(client, nightly, known), 60)
    known.add(retrain.id)
    assert retrain.parameters == nightly.parameters  # the deployment's own data path
    # New data has arrived where the nightly run reads it: y = 3x + 1 now.
    fresh = tmp_path / "fresh.csv"
    x = rng.uniform(0, 20, 80)
    pd.DataFrame({"x": x, "y": 3 * x + 1 + rng.normal(0, 0.1, 80)}).to_csv(fresh, index=False)
    client.update_flow_run(
        retrain.id,
        parameters={
            **retrain.parameters,
            "data": {**retrain.parameters["data"], "path": str(fresh)},
            **outputs,
        },
    )
    _only_run_waiting_in_default(client, deployed, retrain)
    done, output = run_worker(server, client, retrain, "default", env)
    assert done.state is not None and done.state.is_completed(), output[-6000:]
    with Registry.open(registry, create=False) as reg:
        assert reg.get_alias(MODEL, "champion") == 2
    promoted = wait_for(
        "v2's promotion",
        lambda: [
            e
            for e in read_events(client, PROMOTED, started, resource)
            if e.payload["ref"] == f"{MODEL}:2"
        ],
        30,
    )
    assert related_runs(promoted[0]) == {str(retrain.id)}

    # The promotion trigger scores with exactly v2.
    (rescore,) = wait_for("the scoring run of v2", lambda: _runs(client, hourly, known), 60)
    assert rescore.parameters["model"] == f"{MODEL}:2"
    # Its scores go to tmp, not the checkout's artifacts/scores.
    scores = str(tmp_path / "rescored.csv")
    client.update_flow_run(rescore.id, parameters={**rescore.parameters, "out": scores})
    _only_run_waiting_in_default(client, deployed, rescore)
    scored, output = run_worker(server, client, rescore, "default", env)
    assert scored.state is not None and scored.state.is_completed(), output[-6000:]
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[rescore.id]))
    )
    keys = {a.key: a for a in artifacts}
    assert f"with {MODEL}:2" in str(keys[f"{MODEL}-scores"].description)
    # data/seed.csv holds the target: the new champion is monitored as well.
    assert f"{MODEL}:2" in str(keys[f"{MODEL}-monitoring"].description)
    assert set(pd.read_csv(scores)["model_version"]) == {2}
