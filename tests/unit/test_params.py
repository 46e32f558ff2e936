"""One parameter model: the flow, the CLI and prefect.yaml all read TrainParams/ScoreParams."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from regflow.cli import app
from regflow.errors import UsageError
from regflow.schemas.params import (
    DEFAULT_MIN_ABS_R,
    GateParams,
    ScoreParams,
    TrainParams,
    default_model_name,
    field_label,
    flat_index,
    parameter_error,
    sections,
)

REPO = Path(__file__).resolve().parents[2]


def test_every_field_has_a_description_and_one_flat_name() -> None:
    index = flat_index(TrainParams)
    assert len(index) == 29  # the 29 options of `regflow train`
    for section, model in sections(TrainParams).items():
        assert model.__doc__, section
        for name, info in model.model_fields.items():
            assert info.description, f"{section}.{name}"
    assert index["data"] == ("data", "path")
    assert index["model"] == ("model", "name")
    assert index["min_abs_r"] == ("gate", "min_abs_r")
    assert index["data_name"] == ("data", "name")


def test_what_the_data_is_called_does_not_change_the_fingerprint() -> None:
    plain = TrainParams.from_flat({"data": "/tmp/a/data.parquet", "target": "y"})
    named = TrainParams.from_flat({"data": "/tmp/b/data.parquet", "target": "y", "data_name": "n"})
    assert named.data.name == "n" and named.flat()["data_name"] == "n"
    assert plain.model_settings(["x"]) == named.model_settings(["x"])


def test_model_settings_leave_out_paths_names_and_promotion_rules() -> None:
    params = TrainParams.from_flat({"data": "d.csv", "target": "y", "force": True})
    settings = params.model_settings(["a", "b"])
    assert settings["features"] == ["a", "b"] and settings["target"] == "y"
    kept_out = {"data", "model", "out", "registry", "registry_store", "min_r2"}
    kept_out |= {"min_improvement", "force", "data_name"}
    kept_out |= {"engine", "dask_address"}  # where the data is processed: the same model
    assert not kept_out & set(settings)
    assert set(settings) == set(flat_index(TrainParams)) - kept_out


def test_flat_settings_round_trip() -> None:
    params = TrainParams.from_flat({"data": "d.csv", "target": "y", "lr": 0.1, "alpha": 0.01})
    assert params.training.lr == 0.1 and params.gate.alpha == 0.01
    assert TrainParams.from_flat(params.flat()) == params
    assert params.gate.min_abs_r == DEFAULT_MIN_ABS_R == GateParams().min_abs_r


@pytest.mark.parametrize(
    ("flat", "where"),
    [
        ({"lr": math.nan}, ("training", "lr")),
        ({"lr": math.inf}, ("training", "lr")),
        ({"min_r2": -math.inf}, ("registry", "min_r2")),
        ({"seed": 99999999999999999999999}, ("training", "seed")),
        ({"holdout": 1.0}, ("training", "holdout")),
        ({"model": "../escape"}, ("model", "name")),
        ({"preset": "fast"}, ("model", "preset")),
    ],
)
def test_bad_settings_are_refused_naming_the_field(flat: dict, where: tuple[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        TrainParams.from_flat({"data": "d.csv", "target": "y", **flat})
    assert [tuple(e["loc"][:2]) for e in caught.value.errors()] == [where]
    error = parameter_error(caught.value, field_label)
    assert isinstance(error, UsageError) and error.exit_code == 2
    assert ".".join(where) in str(error)


def test_flat_flow_arguments_from_older_deployments_still_work() -> None:
    sections_given = {"data": "d.csv", "model": "seed", "registry": "/srv/reg"}
    params, notes = TrainParams.from_flow_arguments(sections_given, {"target": "y", "seed": 3})
    assert params.data.path == "d.csv" and params.data.target == "y"
    assert params.model.name == "seed" and params.training.seed == 3
    assert params.registry.registry == "/srv/reg"
    assert "flat parameter 'target' is now 'data.target'" in notes
    assert "flat parameter 'registry' is now 'registry.registry'" in notes
    with pytest.raises(ValidationError, match="bogus"):
        TrainParams.from_flow_arguments({"data": "d.csv"}, {"target": "y", "bogus": 1})


def test_grouped_flow_arguments_need_no_notes() -> None:
    given = {"data": {"path": "d.csv", "target": "y"}, "gate": GateParams(alpha=0.01)}
    params, notes = TrainParams.from_flow_arguments(given, {})
    assert notes == [] and params.gate.alpha == 0.01


def test_default_model_name_is_always_a_valid_name() -> None:
    assert default_model_name("data/my data.csv") == "my-data"
    assert default_model_name("https://host/x/seed.parquet?sig=1") == "seed"
    assert default_model_name("...csv") == "model"
    TrainParams.from_flat({"data": "x", "target": "y", "model": default_model_name("a b.csv")})


def test_prefect_yaml_parameters_validate_against_the_models() -> None:
    config = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    models = {"flows/training.py:train": TrainParams, "flows/scoring.py:score": ScoreParams}
    for deployment in config["deployments"]:
        models[deployment["entrypoint"]].model_validate(deployment["parameters"])


def test_the_flow_form_shows_sections_with_descriptions() -> None:
    from prefect.utilities.callables import parameter_schema

    from regflow.flows.training import train

    schema = parameter_schema(train.fn).model_dump()
    assert list(schema["properties"])[:5] == ["data", "model", "training", "gate", "registry"]
    definitions = schema["definitions"]
    assert definitions["GateParams"]["properties"]["alpha"]["description"]
    assert schema["required"] == ["data"]


def test_cli_options_are_the_model_fields() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flat, (section, name) in flat_index(TrainParams).items():
        if (section, name) != ("data", "path"):
            assert f"--{flat.replace('_', '-')}" in result.output, flat


@pytest.mark.parametrize(
    "args",
    [["--lr", "nan"], ["--seed", "99999999999999999999999"], ["--min-r2", "inf"]],
)
def test_cli_refuses_bad_numbers_before_any_work(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", str(tmp_path / "absent.csv"), "--target", "y", *args, "--json"]
    )
    assert result.exit_code == 2, result.output
    assert args[0] in result.output and "Traceback" not in result.output
