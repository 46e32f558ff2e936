"""The Python API: `regflow.train` and `regflow.predict` run the CLI's flows and return Python
objects.

Each call runs the same Prefect flow as `regflow train` or `regflow predict`, so it shows in
the Prefect UI when PREFECT_API_URL points at a server (otherwise Prefect starts a temporary
one). Options are the flat names of the parameter models (`schemas/params.py`), validated by
those models. Expected failures raise the errors the CLI turns into exit codes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd
from pydantic import ValidationError

from regflow.errors import RegflowError, UsageError
from regflow.io.tables import in_memory_name, is_in_memory, write_parquet
from regflow.runtime.startup import quiet_prefect_defaults
from regflow.schemas.params import (
    ParamsModel,
    ScoreParams,
    TrainParams,
    field_label,
    flat_name,
    parameter_error,
    sections,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from prefect.states import State

    from regflow.schemas.results import TrainOutcome, UnchangedOutcome

Data: TypeAlias = "str | os.PathLike[str] | pd.DataFrame | pa.Table"
PathLike: TypeAlias = "str | os.PathLike[str]"

# Stands in for in-memory data while the options are checked, before any file is written.
_PENDING = "<in memory>"


def train(
    data: Data,
    target: str,
    *,
    features: Sequence[str] | None = None,
    model: str | None = None,
    preset: str | None = None,
    registry: PathLike | None = None,
    out: PathLike | None = None,
    force: bool = False,
    data_name: str | None = None,
    **options: Any,
) -> TrainOutcome | UnchangedOutcome:
    """Train a linear regression on `data` and register it, as `regflow train` does.

    Parameters
    ----------
    data : str, os.PathLike, pandas.DataFrame or pyarrow.Table
        A CSV or Parquet file (local path or URL), or a table in memory. A table is written
        to a temporary Parquet file (without its index) for the run and removed afterwards.
    target : str
        The target column.
    features : sequence of str, optional
        The feature columns (default: every numeric column but the target).
    model : str, optional
        The model's name in the registry. Defaults to the file's name without its
        extension; required for in-memory data, which has no file name.
    preset : {"default", "seed"}, optional
        "default" (L-BFGS to the least-squares optimum) or "seed" (the tutorial's SGD).
    registry : str or os.PathLike, optional
        Registry folder or database URL (default ``$REGFLOW_REGISTRY``, else
        ``artifacts/registry``).
    out : str or os.PathLike, optional
        Folder for run folders (default ``artifacts/runs``).
    force : bool, default False
        Train and register even when a version with the same data, settings and regflow
        version exists.
    data_name : str, optional
        What the model card, lineage and messages call the data (default: the path, or
        ``<pandas.DataFrame>`` / ``<pyarrow.Table>`` for a table).
    **options
        Any other option of ``regflow train`` by its flat name: ``lr``, ``epochs``,
        ``optimizer``, ``holdout``, ``seed``, ``dtype``, ``device``, ``min_abs_r``,
        ``alpha``, ``no_intercept``, ``on_invalid``, ``max_invalid_fraction``,
        ``categorical`` (a list of columns to one-hot encode), ``max_levels``,
        ``min_r2``, ``min_improvement``, ``max_optimality_gap`` (docs/pipeline.md).

    Returns
    -------
    TrainOutcome or UnchangedOutcome
        ``status == "completed"``: the registered version, metrics, coefficients and paths.
        ``status == "unchanged"``: nothing was registered; ``model_ref`` names the version
        that already has this data and these settings.

    Raises
    ------
    UsageError
        An unknown or invalid option (exit code 2 in the CLI).
    InvalidInputError
        The data cannot be used: every problem is listed in ``problems`` (exit code 2).
    GateStoppedError
        The correlation gate found the relationship too weak to model (exit code 3).
    RegflowError
        Any other expected failure, such as ``TrainingDidNotConvergeError`` (exit code 1).
        ``flow_run_id`` names the failed run.

    Examples
    --------
    >>> import pandas as pd
    >>> import regflow
    >>> frame = pd.DataFrame({"x": [1, 2, 3, 3.5], "y": [2, 4, 6, 7]})
    >>> outcome = regflow.train(frame, target="y", model="seed", preset="seed")
    >>> outcome.training.coefficients  # doctest: +SKIP
    {'x': 1.97...}
    """
    quiet_prefect_defaults()
    given = {
        "target": target,
        "features": None if features is None else list(features),
        "model": model,
        "preset": preset,
        "registry": _fspath(registry),
        "out": _fspath(out),
        "force": force,
        "data_name": data_name,
        **options,
    }
    in_memory = is_in_memory(data)
    checked = _parse(TrainParams, _PENDING if in_memory else _data_path(data), given)
    if in_memory and model is None:
        raise UsageError("model: name the model for in-memory data (there is no file name)")
    from regflow.flows.training import train as train_flow
    from regflow.registry.location import check_output_path
    from regflow.tasks.train import select_device

    # The CLI's checks before any run starts: a missing device, outputs inside the registry.
    select_device(checked.training.device)
    check_output_path(checked.registry.out, checked.registry.registry, folder=True)
    with _readable(data, data_name) as (path, name):
        data_params = checked.data.model_copy(update={"path": path, "name": name})
        state = train_flow(
            data=data_params,
            model=checked.model,
            training=checked.training,
            gate=checked.gate,
            registry=checked.registry,
            return_state=True,
        )
    outcome: TrainOutcome | UnchangedOutcome = _value(state, "training")
    return outcome


def predict(
    data: Data,
    model: str | None = None,
    *,
    registry: PathLike | None = None,
    data_name: str | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Score `data` with a registry model, as `regflow predict` does, and return the scores.

    Runs the ``score`` flow into a temporary Parquet file and reads it back, so the run,
    its table artifact and, when `data` holds the model's target column, its monitoring
    verdict (registry record, ``regflow.model.degraded`` event) are those of the CLI.

    Parameters
    ----------
    data : str, os.PathLike, pandas.DataFrame or pyarrow.Table
        A CSV or Parquet file (local path or URL), or a table in memory.
    model : str, optional
        ``name@alias``, ``name:version`` or ``name``. Defaults to
        ``<file name>@champion``; required for in-memory data.
    registry : str or os.PathLike, optional
        Registry folder or database URL (default ``$REGFLOW_REGISTRY``).
    data_name : str, optional
        What the run's artifacts, monitoring record and messages call the data.
    **options
        ``max_mse_ratio`` and ``max_psi``: the monitoring thresholds of ``regflow predict``.

    Returns
    -------
    pandas.DataFrame
        The input's columns plus ``predicted``, ``model_version`` and ``model_ref``, with a
        DataFrame's own index. ``attrs["regflow"]`` holds the run's result as
        ``regflow predict --json`` prints it: ``flow_run_id``, ``model``, ``rows``,
        ``status`` (``ok``, ``passed`` or ``degraded``) and ``monitoring``.

    Raises
    ------
    UsageError
        An unknown or invalid option (exit code 2 in the CLI).
    InvalidInputError
        The data does not fit the model's signature (exit code 2).
    NotFoundError
        No such model or version, or a malformed reference (``InvalidReferenceError``;
        both exit code 2).
    RegflowError
        Any other expected failure, such as ``IntegrityError`` (exit code 1).

    Examples
    --------
    >>> scores = regflow.predict(frame, model="seed@champion")  # doctest: +SKIP
    >>> scores[["x", "predicted"]]  # doctest: +SKIP
    """
    quiet_prefect_defaults()
    if "out" in options:  # the temporary file is read back and removed
        raise UsageError("out: predict returns the scores; save them with DataFrame.to_parquet")
    given = {"model": model, "registry": _fspath(registry), "data_name": data_name, **options}
    in_memory = is_in_memory(data)
    checked = _parse(ScoreParams, _PENDING if in_memory else _data_path(data), given)
    if in_memory and model is None:
        raise UsageError("model: name the model for in-memory data (there is no file name)")
    from regflow.flows.scoring import score
    from regflow.tasks.score import resolve_request

    with (
        _readable(data, data_name) as (path, name),
        tempfile.TemporaryDirectory(prefix="regflow-scores-") as folder,
    ):
        state = score(
            data=path,
            model=resolve_request(path, checked.model),
            out=str(Path(folder) / "scores.parquet"),
            registry=checked.registry,
            max_mse_ratio=checked.max_mse_ratio,
            max_psi=checked.max_psi,
            data_name=name,
            return_state=True,
        )
        result = _value(state, "scoring")
        scored = pd.read_parquet(result.out)
    if isinstance(data, pd.DataFrame) and len(data.index) == len(scored):
        scored.index = data.index
    # The file is gone: its path and format would only mislead.
    summary = result.model_dump(mode="json", exclude={"out", "format"})
    scored.attrs["regflow"] = {"flow_run_id": _run_id(state), **summary}
    return scored


def _fspath(value: PathLike | None) -> str | None:
    return None if value is None else os.fspath(value)


def _data_path(data: object) -> str:
    if isinstance(data, str | os.PathLike):
        return os.fspath(data)
    raise TypeError(
        "data must be a path or URL (str, os.PathLike), a pandas DataFrame, a pyarrow Table "
        f"or a table with the Arrow C stream interface, not {type(data).__name__}"
    )


def _parse(params: type[ParamsModel], path: str, given: Mapping[str, Any]) -> Any:
    """The model from the flat options (None: not given); errors name the keyword."""
    flat = {"data": path, **{k: v for k, v in given.items() if v is not None}}
    try:
        return params.from_flat(flat)
    except ValidationError as err:
        raise parameter_error(err, _keyword_label(params)) from None


def _keyword_label(params: type[ParamsModel]) -> Callable[[tuple[Any, ...]], str]:
    """A validation error's location as the keyword the caller passed (`lr`, `data_name`)."""
    groups = sections(params)

    def label(loc: tuple[Any, ...]) -> str:
        if len(loc) >= 2 and str(loc[0]) in groups and "" not in groups:
            return flat_name(str(loc[0]), str(loc[1]))
        return field_label(loc)

    return label


@contextmanager
def _readable(data: Data, data_name: str | None) -> Iterator[tuple[str, str | None]]:
    """A path the flow can read and the data's name; in-memory data lives in a temporary
    Parquet file for the duration."""
    if not is_in_memory(data):
        yield _data_path(data), data_name
        return
    name = data_name or in_memory_name(data)
    with tempfile.TemporaryDirectory(prefix="regflow-data-") as folder:
        yield str(write_parquet(data, Path(folder), name)), name


def _run_id(state: State) -> str | None:
    run_id = state.state_details.flow_run_id
    return str(run_id) if run_id else None


def _value(state: State, what: str) -> Any:
    """A completed run's value; a failed run raises its error (carrying the run's id)."""
    value = state.result(raise_on_failure=False)
    if state.is_completed():
        return value
    if isinstance(value, RegflowError):
        value.flow_run_id = _run_id(state)
        raise value
    if isinstance(value, BaseException):
        raise value
    raise RegflowError(f"the {what} run failed: {state.message}")
