"""Real processes on one registry at once, on both backends (a SQLite file, a PostgreSQL
database): eight registrations, and five processes racing promotions and rollbacks."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regflow.registry import Registry
from regflow.registry.aliases import _holder_stack

HERE = Path(__file__).resolve().parent
WORKER = HERE / "registry_worker.py"
ALIAS_WORKER = HERE / "alias_worker.py"
N = 8


def _run_together(commands: list[list[str]], go: Path) -> list[dict]:
    """Start every command, let them import and open the registry, then release them at once."""
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    time.sleep(1.0)  # let them import and open the registry (creating it concurrently)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.slow
def test_eight_concurrent_registrations(registry_uri: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    results = _run_together(
        [
            [sys.executable, str(WORKER), registry_uri, str(tmp_path / f"run{i}"), str(go), str(i)]
            for i in range(N)
        ],
        go,
    )

    versions = sorted(r["version"] for r in results)
    assert versions == list(range(1, N + 1))
    with Registry.open(registry_uri) as reg:
        listed = reg.list_versions("demo")
        assert [v.version for v in listed] == versions
        # Each version holds the run that registered it.
        by_version = {r["version"]: r["run"] for r in results}
        for v in listed:
            assert v.run_id == f"flow-run-{by_version[v.version]}"
        # The audit log is one unbroken chain of compare-and-set moves.
        log = reg.history("demo", "champion")
        assert len(log) == N
        assert log[0].from_version is None
        for before, after in itertools.pairwise(log):
            assert after.from_version == before.to_version
        assert sorted(e.to_version for e in log) == versions
        assert reg.get_alias("demo", "champion") == log[-1].to_version
        assert reg.verify() == []
        assert reg.store.list_staging() == []


@pytest.mark.slow
def test_five_concurrent_promote_and_rollback_races(
    registry_uri: str, tmp_path: Path, run_factory
) -> None:
    workers, rounds, versions = 5, 6, 3
    with Registry.open(registry_uri) as reg:
        for i in range(versions):
            reg.register("demo", run_factory(coef=[1.0 + i]))
        reg.promote("demo:1", actor="setup")
    go = tmp_path / "go"
    args = [str(go), "", str(rounds), str(versions)]
    commands = []
    for i in range(workers):
        args[1] = str(i)
        commands.append([sys.executable, str(ALIAS_WORKER), registry_uri, *args])
    results = _run_together(commands, go)

    refused = [r for result in results for r in result["refused"]]
    # A move without an expected version takes the holder inside its own transaction, so a
    # race is never a conflict; the only refusal is a rollback with nothing to go back to.
    unexpected = [r for r in refused if not r.startswith("RegistryError: ")]
    assert unexpected == [] and all("no earlier holder" in r for r in refused)
    moved = sorted(m for result in results for m in result["moves"])
    assert len(moved) + len(refused) == workers * rounds
    with Registry.open(registry_uri) as reg:
        log = reg.history("demo", "champion")
        # Every move is in the audit log, once, and nothing else is.
        assert [e.actor for e in log[:1]] == ["setup"]
        assert [e.id for e in log[1:]] == moved
        for before, after in itertools.pairwise(log):
            assert after.from_version == before.to_version, (before, after)
        # Each rollback went to the holder that the log before it says was previous.
        for k, event in enumerate(log):
            if event.action == "rollback":
                stack = _holder_stack(log[:k])  # type: ignore[arg-type]  # same attributes
                assert event.to_version == stack[-2], (k, event)
        assert reg.get_alias("demo", "champion") == log[-1].to_version
        assert reg.verify() == []
