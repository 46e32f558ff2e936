"""Fast checks of the deployment spec, the serve command, the event helpers and the report.

No server: the real-server path is tests/integration/test_deployments.py.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import regflow.tasks.events as events
from regflow.deployments.serve import load_specs, serve_command, to_runner_deployment, to_schedule
from regflow.schemas.results import FeatureCorrelation, GateReport, GateWarning
from regflow.tasks.report import PLOT_CAPTIONS, plots_markdown

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def gate(value: float = 0.1, p_value: float = 0.6) -> GateReport:
    return GateReport(
        n_rows=40,
        features=[FeatureCorrelation(feature="x", r=value, p_value=p_value, spearman=0.05)],
        multiple_r=abs(value),
        multiple_r_p_value=p_value,
        statistic="max_abs_r",
        value=value,
        p_value=p_value,
        min_abs_r=0.5,
        alpha=0.05,
        condition_number=1.0,
        passed=False,
        reason="|r| = 0.1 for 'x' is below min_abs_r = 0.5",
        warnings=[GateWarning(kind="curvature", message="a quadratic term is significant")],
    )


# --------------------------------------------------------------------------- prefect.yaml


def test_prefect_yaml_declares_the_deployments() -> None:
    specs = {s.name: s for s in load_specs()}
    assert set(specs) == {"nightly", "hourly", "partitioned"}
    assert specs["nightly"].entrypoint == "flows/training.py:train"
    assert specs["hourly"].entrypoint == "flows/scoring.py:score"
    for spec in specs.values():
        assert (REPO / spec.flow_file).is_file()
        data = spec.parameters["data"]
        assert (REPO / (data["path"] if isinstance(data, dict) else data)).exists()
        assert [s["timezone"] for s in spec.schedules] == (
            [] if spec.name == "partitioned" else ["UTC"]  # partitioned runs on demand
        )
    assert set(specs["nightly"].parameters) == {"data", "model"}


@pytest.mark.parametrize("name", ["nightly", "hourly", "partitioned"])
def test_runner_deployments_match_the_flows(name: str) -> None:
    spec = next(s for s in load_specs() if s.name == name)
    deployment = to_runner_deployment(spec)
    # Served from the installed package: a module path, not the yaml's file path.
    assert deployment.entrypoint == spec.module_entrypoint
    # Every parameter the yaml sets is one the flow takes.
    assert set(spec.parameters) <= set(deployment._parameter_openapi_schema.properties)
    assert [d.schedule.cron for d in deployment.schedules] == [s["cron"] for s in spec.schedules]
    assert deployment.concurrency_limit == 1


def test_the_promotion_trigger_scores_the_promoted_version() -> None:
    hourly = next(s for s in load_specs() if s.name == "hourly")
    (trigger,) = to_runner_deployment(hourly).triggers
    assert trigger.expect == {events.MODEL_PROMOTED}
    assert trigger.match.root == {"prefect.resource.id": events.model_resource_id("seed")}
    assert trigger.parameters == {"model": "{{ event.payload.ref }}"}


def test_to_schedule_reads_cron_and_interval() -> None:
    cron = to_schedule({"cron": "0 2 * * *", "timezone": "UTC"})
    assert (cron.cron, cron.timezone) == ("0 2 * * *", "UTC")
    assert to_schedule({"interval": 3600}).interval.total_seconds() == 3600
    with pytest.raises(ValueError, match="cron and interval"):
        to_schedule({"rrule": "FREQ=DAILY"})


def test_serve_dry_run_lists_and_rejects_unknown_names() -> None:
    import typer

    app = typer.Typer()
    app.command()(serve_command)
    runner = CliRunner()
    listed = runner.invoke(app, ["--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert "regflow.flows.training.train as 'nightly': cron '0 2 * * *' UTC" in listed.output
    assert "on regflow.model.promoted" in listed.output
    only = runner.invoke(app, ["--dry-run", "--only", "hourly"])
    assert "nightly" not in only.output
    unknown = runner.invoke(app, ["--dry-run", "--only", "weekly"])
    assert unknown.exit_code == 2
    assert "weekly" in unknown.output


# --------------------------------------------------------------------------- events


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake_emit(event: str, resource: dict[str, str], **kwargs: Any) -> None:
        calls.append({"event": event, "resource": resource, **kwargs})

    monkeypatch.setattr(events, "emit_event", fake_emit)
    return calls


def test_model_events_have_the_model_as_resource(emitted: list[dict[str, Any]]) -> None:
    events.emit_model_registered("seed", 3, "seed:3", "run-1")
    events.emit_model_promoted("seed", 3, 2, "challenger mse <= champion mse")
    registered, promoted = emitted
    assert registered["event"] == "regflow.model.registered"
    assert registered["resource"]["prefect.resource.id"] == "regflow.model.seed"
    assert registered["resource"]["regflow.model.version"] == "3"  # labels are strings
    assert registered["payload"] == {
        "name": "seed",
        "version": 3,
        "ref": "seed:3",
        "flow_run_id": "run-1",
    }
    assert promoted["event"] == "regflow.model.promoted"
    assert promoted["payload"]["ref"] == "seed:3"
    assert promoted["payload"]["previous"] == 2
    assert all(isinstance(v, str) for v in promoted["resource"].values())


def test_gate_stopped_payload_is_json_safe(emitted: list[dict[str, Any]]) -> None:
    events.emit_gate_stopped("noise", gate(value=math.nan))
    (stopped,) = emitted
    assert stopped["event"] == "regflow.gate.stopped"
    assert stopped["resource"]["prefect.resource.id"] == "regflow.model.noise"
    assert "regflow.model.version" not in stopped["resource"]
    payload = stopped["payload"]
    assert payload["value"] is None  # NaN is not JSON
    assert payload["decision"] == "stop"
    assert payload["features"] == ["x"]
    assert payload["warnings"] == ["curvature"]


# --------------------------------------------------------------------------- report


def test_plots_are_captioned_embedded_pngs_in_reading_order() -> None:
    images = {"loss": PNG, "residuals": PNG, "extra_plot": PNG, "fit": PNG}
    text = plots_markdown(images)
    captions = [line.strip("*") for line in text.splitlines() if line.startswith("**")]
    assert captions == [
        PLOT_CAPTIONS["fit"],
        PLOT_CAPTIONS["residuals"],
        PLOT_CAPTIONS["loss"],
        "extra plot",
    ]
    uris = [part.split(")", 1)[0] for part in text.split("](")[1:]]
    assert len(uris) == 4
    for uri in uris:
        prefix, data = uri.split(",", 1)
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data) == PNG


def test_no_plots_says_so() -> None:
    assert plots_markdown({}) == "No plots were rendered."
