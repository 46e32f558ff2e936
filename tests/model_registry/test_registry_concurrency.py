"""Eight processes register into one registry at once (real processes, real SQLite file)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regflow.registry import Registry

WORKER = Path(__file__).resolve().parent / "registry_worker.py"
N = 8


@pytest.mark.slow
def test_eight_concurrent_registrations(tmp_path):
    reg_dir, go = tmp_path / "registry", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(reg_dir), str(tmp_path / f"run{i}"), str(go), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(N)
    ]
    time.sleep(1.0)  # let them import and open the registry (creating it concurrently)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    versions = sorted(r["version"] for r in results)
    assert versions == list(range(1, N + 1))
    with Registry.open(reg_dir) as reg:
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
