"""One real `prefect server start` (loopback, temporary PREFECT_HOME) for every integration
test module, with regflow's deployments deployed from prefect.yaml by `prefect deploy`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import Deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from support import POOL, PREFECT_FILE, QUEUE, prefect_cli

from regflow.deployments.local_server import LocalServer, local_server


@pytest.fixture(scope="package")
def server() -> Iterator[LocalServer]:
    with local_server(ui=False, timeout=120) as running:
        yield running


@pytest.fixture(scope="package")
def client(server: LocalServer) -> Iterator[SyncPrefectClient]:
    # Explicit URL: the session's test harness may have pointed Prefect elsewhere.
    with (
        temporary_settings(updates={PREFECT_API_URL: server.api_url}),
        get_client(sync_client=True) as api,
    ):
        yield api


@pytest.fixture(scope="package")
def deployed(server: LocalServer, client: SyncPrefectClient) -> dict[str, Deployment]:
    prefect_cli(server, "work-pool", "create", POOL, "--type", "process")
    prefect_cli(server, "work-queue", "create", QUEUE, "--pool", POOL)
    # The command the README gives, from the repository root.
    prefect_cli(server, "deploy", "--all", "--prefect-file", PREFECT_FILE, "--no-prompt")
    return {
        "nightly": client.read_deployment_by_name("train/nightly"),
        "hourly": client.read_deployment_by_name("score/hourly"),
        "partitioned": client.read_deployment_by_name("train/partitioned"),
    }
