"""Every bad training input ends in a named Failed state with the error the CLI turns into its
exit code and one message naming the file, the column and the check; nothing is registered.

The flow runs in-process (fast); test_cli_bad_input.py runs a few of these through the real
command line to show the exit codes and the absence of tracebacks.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from bad_files import TRAIN_CASES, Case
from run_checks import registered_versions, run_folders
from threadpoolctl import threadpool_limits

from regflow.errors import InvalidInputError, RegflowError
from regflow.flows.training import train
from regflow.registry import Registry

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One registry for the whole corpus: no case may ever add a version to it.
    return tmp_path_factory.mktemp("corpus") / "registry"


@pytest.mark.parametrize("case", TRAIN_CASES, ids=lambda c: c.id)
def test_bad_training_input_ends_clearly(case: Case, tmp_path: Path, registry_dir: Path) -> None:
    data = str(case.write(tmp_path))
    out = tmp_path / "runs"
    state = train(
        data=data,
        target=case.target,
        features=case.features,
        out=str(out),
        registry=str(registry_dir),
        return_state=True,
    )
    error = state.result(raise_on_failure=False)
    assert state.is_failed()
    # A RegflowError in a named state is the expected-failure path: one message, no traceback.
    assert isinstance(error, RegflowError), f"{case.id}: {state.name}: {state.message}"
    assert error.exit_code == case.exit_code
    message = str(error)
    for text in case.also:
        assert text in message
    if case.exit_code == 2:
        assert state.name == "InvalidInput" and isinstance(error, InvalidInputError)
        assert message.startswith(f"{data}: invalid input")
        assert (case.column, case.check) in {(p.column, p.check) for p in error.problems}
        assert f"check '{case.check}' failed" in message
        if case.column is not None:
            assert f"column '{case.column}'" in message
        assert all(p.file == data for p in error.problems)
    else:
        assert state.name == "WeakCorrelation"
    assert registered_versions(registry_dir) == 0
    assert run_folders(out) == []


def test_a_thousand_feature_columns_train(tmp_path: Path) -> None:
    """Wide data is not bad input: 1,000 features and 1,500 rows train, gate and publish."""
    rng = np.random.default_rng(21)
    n, d = 1500, 1000
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=d) + rng.normal(scale=0.5, size=n)
    columns = [f"f{j:04d}" for j in range(d)]
    path = tmp_path / "wide.csv"
    pacsv.write_csv(pa.table({**{c: x[:, j] for j, c in enumerate(columns)}, "y": y}), path)
    registry = tmp_path / "registry"
    started = time.perf_counter()
    # One BLAS thread: on a shared, oversubscribed 2-core machine OpenBLAS threads spin-wait
    # on each other and one 1,500 x 1,000 QR takes seconds instead of a tenth of one.
    with threadpool_limits(1):
        state = train(
            data=str(path),
            target="y",
            out=str(tmp_path / "runs"),
            registry=str(registry),
            return_state=True,
        )
    elapsed = time.perf_counter() - started
    assert state.is_completed(), state.message
    outcome = state.result()
    assert outcome.features == columns and outcome.gate.passed
    assert outcome.gate.statistic == "R" and len(outcome.gate.features) == d
    assert len(outcome.training.coefficients) == d
    gap = outcome.evaluation.optimality_gap
    assert gap is not None and gap < 1e-3
    with Registry.open(registry) as reg:
        version = reg.resolve("wide")
        assert len(version.signature.features) == d
        assert reg.verify() == []
    assert elapsed < 180, f"1,000 features took {elapsed:.0f} s"
