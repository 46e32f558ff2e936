"""Shared fixtures: one Prefect test harness per session, with a temporary PREFECT_HOME."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before Prefect is imported anywhere: never touch the user's ~/.prefect, never phone home.
_HOME = tempfile.mkdtemp(prefix="regflow-prefect-home-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# A CLI run without PREFECT_API_URL keeps Prefect's temporary server: no test starts regflow's
# long-lived local server by accident (tests/cli/test_server.py opts back in for its own home).
os.environ["REGFLOW_NO_SERVER"] = "1"
# Tests that don't name a registry must not write into the checkout's artifacts/registry.
os.environ["REGFLOW_REGISTRY"] = tempfile.mkdtemp(prefix="regflow-registry-")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# REGFLOW_NIST_DIR: where ../shared does not travel (scripts/gpu_check.sh on a GPU machine).
NIST = Path(os.environ.get("REGFLOW_NIST_DIR") or REPO.parent / "shared" / "data" / "nist")


@pytest.fixture(autouse=True)
def own_default_registry(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test's default registry is its own: a run on the same data as an earlier test's
    would otherwise find that version and register nothing (unchanged input)."""
    monkeypatch.setenv("REGFLOW_REGISTRY", str(tmp_path_factory.mktemp("registry")))


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """A real Prefect API (the test harness's own server); yields its URL for subprocesses."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def nist_dir() -> Path:
    if not (NIST / "certified.json").exists():
        pytest.skip(f"NIST StRD reference data not found at {NIST} (../shared is absent)")
    return NIST


@pytest.fixture
def seed_csv() -> Path:
    return REPO / "data" / "seed.csv"
