"""`regflow predict` against a model's signature: bad input ends clearly, nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regflow.errors import InvalidInputError, RegflowError
from regflow.flows.scoring import score
from regflow.flows.training import train

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A real trained model `houses` (features a, b; target y) in its own registry."""
    folder = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    frame["y"] = 2 * frame.a - frame.b + rng.normal(0, 0.1, 40)
    data = folder / "houses.csv"
    frame.to_csv(data, index=False)
    registry = folder / "registry"
    state = train(data=str(data), target="y", out=str(folder / "runs"), registry=str(registry))
    assert state.model_ref == "houses:1"
    return "houses:1", registry


def _file(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# (id, file name, content, check, column the message names)
CASES = [
    ("missing_column", "p.csv", "a,c\n1,2\n2,3\n", "column_in_dataframe", "b"),
    ("strings", "p.csv", "a,b\n1,2\n2,oops\n", "numeric_dtype", "b"),
    ("booleans", "p.csv", "a,b\ntrue,2\nfalse,3\n", "numeric_dtype", "a"),
    ("empty_cell", "p.csv", "a,b\n1,2\n,3\n", "not_nullable", "a"),
    ("infinity", "p.csv", "a,b\n1,2\n2,-inf\n", "finite", "b"),
    ("reserved_column", "p.csv", "a,b,predicted\n1,2,0\n", "reserved_column", "predicted"),
    ("duplicate_names", "p.csv", "a,b,b\n1,2,3\n", "unique_column_names", "b"),
    ("not_utf8", "p.csv", "a,b\n1,caf\u00e9\n".encode("latin-1"), "utf8", None),
    ("empty_file", "p.csv", b"", "not_empty", None),
    ("wrong_extension", "p.txt", "a,b\n1,2\n", "file_format", None),
]


@pytest.mark.parametrize(
    ("name", "content", "check", "column"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_scoring_input_ends_clearly(
    model: tuple[str, Path],
    tmp_path: Path,
    name: str,
    content: str | bytes,
    check: str,
    column: str | None,
) -> None:
    ref, registry = model
    data = _file(tmp_path, name, content)
    out = tmp_path / "scores.csv"
    state = score(
        data=str(data), model=ref, out=str(out), registry=str(registry), return_state=True
    )
    error = state.result(raise_on_failure=False)
    assert state.name == "InvalidInput" and isinstance(error, InvalidInputError), state.message
    assert error.exit_code == 2
    message = str(error)
    assert message.startswith(f"{data}: invalid input")
    assert f"check '{check}' failed" in message
    assert check in {p.check for p in error.problems}
    if column is not None:
        assert f"'{column}'" in message
    if check in ("finite", "not_nullable"):  # rows counted as training counts them
        assert "row 2 (" in message
    assert not out.exists()


def test_extra_columns_are_passed_through_not_refused(
    model: tuple[str, Path], tmp_path: Path
) -> None:
    ref, registry = model
    data = _file(tmp_path, "extra.csv", "id,b,a,y,note\nr1,1,2,9,x\nr2,0,1,8,y\n")
    result = score(data=str(data), model=ref, out=str(tmp_path / "s.csv"), registry=str(registry))
    assert result.ignored_columns == ["id", "y", "note"]
    scored = pd.read_csv(result.out)
    assert scored["id"].tolist() == ["r1", "r2"] and scored["predicted"].notna().all()


def test_unknown_model_is_exit_2(model: tuple[str, Path], tmp_path: Path) -> None:
    _, registry = model
    data = _file(tmp_path, "p.csv", "a,b\n1,2\n")
    state = score(data=str(data), model="houses:7", registry=str(registry), return_state=True)
    error = state.result(raise_on_failure=False)
    assert state.name == "NotFound" and isinstance(error, RegflowError)
    assert error.exit_code == 2 and "houses:7" in str(error)


def test_header_only_scores_zero_rows(model: tuple[str, Path], tmp_path: Path) -> None:
    """Nothing to score is an empty result, not a 'wrong type' for the empty text columns."""
    ref, registry = model
    data = _file(tmp_path, "empty-batch.csv", "a,b\n")
    result = score(data=str(data), model=ref, out=str(tmp_path / "s.csv"), registry=str(registry))
    assert result.rows == 0 and result.prediction_mean is None
    assert list(pd.read_csv(result.out).columns) == [
        "a",
        "b",
        "predicted",
        "model_version",
        "model_ref",
    ]
