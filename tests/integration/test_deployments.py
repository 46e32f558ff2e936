"""Deployments against a real `prefect server start`: schedules, scheduler, a process worker.

One server (loopback, temporary PREFECT_HOME, stopped at the end even on failure; conftest.py)
serves the integration tests. The deployments come from deployments/prefect.yaml through
`prefect deploy`; the two runs executed here go to a work queue of their own, so the worker
never picks up a scheduled or automation-created run, and their outputs and registry live in
tmp folders.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import Deployment, FlowRun
from prefect.types._datetime import now
from support import (
    POOL,
    PREFECT_FILE,
    QUEUE,
    REPO,
    read_events,
    related_runs,
    run_worker,
    wait_for,
)

from regflow.deployments.local_server import LocalServer
from regflow.deployments.serve import load_specs
from regflow.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

TRAINED_MODEL = "seed"  # the nightly deployment's model: its promotion fires the trigger
GATED_MODEL = "noise"


@dataclass
class Executed:
    trained: FlowRun
    gated: FlowRun
    registry: Path
    out: Path
    worker_output: str
    started: Any


@pytest.fixture(scope="module")
def executed(
    server: LocalServer,
    client: SyncPrefectClient,
    deployed: dict[str, Deployment],
    tmp_path_factory: pytest.TempPathFactory,
) -> Executed:
    """One train run that completes and one the gate stops, each executed by a process worker."""
    tmp = tmp_path_factory.mktemp("deployment-runs")
    registry, out = tmp / "registry", tmp / "runs"
    rng = np.random.default_rng(7)
    noise = tmp / "noise.csv"
    pd.DataFrame({"x": rng.normal(size=40), "y": rng.normal(size=40)}).to_csv(noise, index=False)
    started = now("UTC")

    # Parameters are grouped (TrainParams); a run's section replaces the deployment's whole
    # section, so each names every field it needs. The worker's REGFLOW_REGISTRY points at
    # the same registry.
    outputs_to = {"registry": {"out": str(out), "registry": str(registry)}}
    nightly = deployed["nightly"].id
    outputs = []

    def execute(parameters: dict[str, Any]) -> FlowRun:
        # One run per worker call: the nightly deployment's concurrency limit is 1, so a
        # second run submitted alongside would be held back.
        run = client.create_flow_run_from_deployment(
            nightly, parameters={**parameters, **outputs_to}, work_queue_name=QUEUE
        )
        final, output = run_worker(server, client, run, QUEUE, {"REGFLOW_REGISTRY": str(registry)})
        outputs.append(output)
        return final

    trained = execute({})  # data and model from prefect.yaml
    gated = execute({"data": {"path": str(noise), "target": "y"}, "model": {"name": GATED_MODEL}})
    return Executed(
        trained=trained,
        gated=gated,
        registry=registry,
        out=out,
        worker_output="\n".join(outputs),
        started=started,
    )


def test_deployments_come_from_prefect_yaml(deployed: dict[str, Deployment]) -> None:
    specs = {s.name: s for s in load_specs(REPO / PREFECT_FILE)}
    assert set(deployed) == set(specs) == {"nightly", "hourly", "partitioned"}
    for name, deployment in deployed.items():
        spec = specs[name]
        assert deployment.entrypoint == spec.entrypoint
        assert deployment.work_pool_name == POOL
        assert deployment.parameters == spec.parameters
        # The pull step's directory is the checkout `prefect deploy` ran in.
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
        ]
        schedules = [s.schedule.model_dump() for s in deployment.schedules]
        assert [(s["cron"], s["timezone"]) for s in schedules] == [
            (c["cron"], c["timezone"]) for c in spec.schedules
        ]
        assert all(s.active for s in deployment.schedules)
    assert deployed["nightly"].parameters["data"]["features"] == ["x"]


def test_promotion_trigger_is_an_automation(
    client: SyncPrefectClient, deployed: dict[str, Deployment]
) -> None:
    automations = client.read_automations_by_name("score-seed-on-promotion")
    assert len(automations) == 1
    automation = automations[0]
    assert automation.enabled
    assert automation.trigger.expect == {"regflow.model.promoted"}
    action = automation.actions[0]
    assert action.deployment_id == deployed["hourly"].id
    assert action.parameters == {"model": "{{ event.payload.ref }}"}


def test_scheduler_creates_scheduled_runs(
    client: SyncPrefectClient, deployed: dict[str, Deployment]
) -> None:
    def scheduled(deployment: Deployment) -> list[FlowRun]:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            limit=50,
        )
        return [r for r in runs if r.auto_scheduled and r.state and r.state.is_scheduled()]

    for name in ("nightly", "hourly"):  # train/partitioned runs on demand: no schedule
        deployment = deployed[name]
        runs = wait_for(f"scheduled runs of {name}", lambda d=deployment: scheduled(d), 90)
        assert all(r.expected_start_time > now("UTC") for r in runs)
        assert all(r.work_queue_name == "default" for r in runs)
    nightly = scheduled(deployed["nightly"])
    assert {(r.expected_start_time.hour, r.expected_start_time.minute) for r in nightly} == {(2, 0)}
    hourly = scheduled(deployed["hourly"])
    assert len(hourly) >= 3
    assert {r.expected_start_time.minute for r in hourly} == {0}
    assert scheduled(deployed["partitioned"]) == []


def test_worker_completes_a_deployment_run(client: SyncPrefectClient, executed: Executed) -> None:
    run = executed.trained
    assert run.state is not None
    assert run.state.is_completed(), (
        f"train run ended {run.state.name}: {run.state.message}\n" + executed.worker_output[-6000:]
    )
    assert run.name.startswith(f"train-{TRAINED_MODEL}-")
    assert {f"model:{TRAINED_MODEL}", "preset:default"} <= set(run.tags)

    artifacts = {
        a.key or a.type: a
        for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    }
    assert artifacts[f"{TRAINED_MODEL}-metrics"].type == "table"
    report = artifacts[f"{TRAINED_MODEL}-report"]
    assert report.type == "markdown"
    text = str(report.data)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert text.count("](data:image/png;base64,") == 4, headings  # loss, fit, two diagnostics
    assert any("promotion" in h.lower() for h in headings), headings  # the flow's extra section
    assert "progress" in {a.type for a in artifacts.values()}

    with Registry.open(executed.registry, create=False) as registry:
        version = registry.resolve(TRAINED_MODEL)
        assert version.version == 1
        assert version.run_id == str(run.id)
        assert registry.get_alias(TRAINED_MODEL, "champion") == 1
    (run_folder,) = (executed.out / TRAINED_MODEL).iterdir()  # outputs went where we said
    assert (run_folder / "model.safetensors").is_file()


def test_deployment_run_emits_model_events_and_triggers_scoring(
    client: SyncPrefectClient, deployed: dict[str, Deployment], executed: Executed
) -> None:
    resource = f"regflow.model.{TRAINED_MODEL}"
    for name in ("regflow.model.registered", "regflow.model.promoted"):
        events = wait_for(
            name, lambda n=name: read_events(client, n, executed.started, resource), 30
        )
        assert str(executed.trained.id) in related_runs(events[0])
        assert events[0].payload["ref"] == f"{TRAINED_MODEL}:1"

    # The trigger in prefect.yaml turns the promotion into a scoring run of that version.
    def triggered() -> list[FlowRun]:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployed["hourly"].id])),
            limit=50,
        )
        return [r for r in runs if not r.auto_scheduled]

    runs = wait_for("the automation's scoring run", triggered, 60)
    assert [r.parameters["model"] for r in runs] == [f"{TRAINED_MODEL}:1"]
    assert runs[0].parameters["data"] == "data/seed.csv"


def test_gated_run_emits_gate_stopped(client: SyncPrefectClient, executed: Executed) -> None:
    run = executed.gated
    assert run.state is not None
    assert run.state.is_failed()
    assert run.state.name == "WeakCorrelation"
    events = wait_for(
        "regflow.gate.stopped",
        lambda: read_events(
            client, "regflow.gate.stopped", executed.started, f"regflow.model.{GATED_MODEL}"
        ),
        30,
    )
    assert len(events) == 1
    assert str(run.id) in related_runs(events[0])
    assert events[0].payload["decision"] == "stop"
    with Registry.open(executed.registry, create=False) as registry:
        assert GATED_MODEL not in {m.name for m in registry.list_models()}


def test_executed_runs_came_from_the_test_queue(
    client: SyncPrefectClient, executed: Executed
) -> None:
    # The worker polled our queue only: scheduled runs were left alone.
    ids = [executed.trained.id, executed.gated.id]
    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    assert {r.work_queue_name for r in runs} == {QUEUE}
