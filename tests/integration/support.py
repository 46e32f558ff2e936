"""What the integration tests share: polling, the prefect CLI, events, a process worker."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)
from prefect.events.schemas.events import Event
from prefect.types._datetime import now

from regflow.deployments.local_server import PREFECT, LocalServer

REPO = Path(__file__).resolve().parents[2]
PREFECT_FILE = "deployments/prefect.yaml"
POOL = "regflow-process"
QUEUE = "integration-tests"  # ours alone: scheduled runs stay in the pool's default queue

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, context: str = "") -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{context}")
        time.sleep(1.0)


def prefect_cli(server: LocalServer, *args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [PREFECT, *args],
        cwd=REPO,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"prefect {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def run_worker(
    server: LocalServer,
    client: SyncPrefectClient,
    run: FlowRun,
    queue: str,
    env: dict[str, str],
) -> tuple[FlowRun, str]:
    """A `--run-once` process worker on `queue` executes `run`; its final state and output.

    With a limit of 1, a --run-once worker waits for its run before it exits.
    """
    command = [PREFECT, "worker", "start", "--pool", POOL, "--work-queue", queue]
    worker = subprocess.run(
        [*command, "--run-once", "--limit", "1", "--name", "integration-worker"],
        cwd=REPO,
        env=server.env({"PREFECT_LOGGING_LEVEL": "INFO", **env}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = worker.stdout + worker.stderr
    assert worker.returncode == 0, f"worker exited {worker.returncode}:\n{output[-6000:]}"

    def final() -> FlowRun | None:
        current = client.read_flow_run(run.id)
        return current if current.state and current.state.is_final() else None

    return wait_for(f"run {run.name} to finish", final, 60, output[-6000:]), output


def read_events(client: SyncPrefectClient, name: str, since: Any, resource_id: str) -> list[Event]:
    page = client.read_events(
        EventFilter(
            occurred=EventOccurredFilter(since=since, until=now("UTC")),
            event=EventNameFilter(name=[name]),
            resource=EventResourceFilter(id=[resource_id]),
        ),
        limit=50,  # the server's maximum page size
    )
    return page.events


def related_runs(event: Event) -> set[str]:
    return {r.id.removeprefix("prefect.flow-run.") for r in event.related if r.role == "flow-run"}
