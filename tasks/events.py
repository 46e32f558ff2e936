"""Prefect events about models: the model is the resource, so automations can match on it.

Event names and resource ids are a public contract (automations, the README, the integration
test match on them): `regflow.model.registered`, `regflow.model.promoted`,
`regflow.gate.stopped`, `regflow.model.degraded`, each about the resource `regflow.model.<name>`.

Inside a flow run Prefect relates each event to the flow run, flow, deployment and tags
itself, so the UI's event feed links back to the run. Emitting never raises for transport
problems (Prefect logs and drops); an event is a notification, not part of the result.
"""

from __future__ import annotations

import math
from typing import Any

from prefect.events import Event, emit_event

from regflow.schemas.results import GateReport
from regflow.stats.monitoring import MonitoringReport

MODEL_RESOURCE_PREFIX = "regflow.model."
MODEL_REGISTERED = "regflow.model.registered"
MODEL_PROMOTED = "regflow.model.promoted"
GATE_STOPPED = "regflow.gate.stopped"
MODEL_DEGRADED = "regflow.model.degraded"


def model_resource_id(name: str) -> str:
    return f"{MODEL_RESOURCE_PREFIX}{name}"


def model_resource(name: str, version: int | None = None) -> dict[str, str]:
    """The model as a Prefect resource; label values must be strings."""
    resource = {
        "prefect.resource.id": model_resource_id(name),
        "prefect.resource.name": name,
        "prefect.resource.role": "model",
        "regflow.model.name": name,
    }
    if version is not None:
        resource["regflow.model.version"] = str(version)
    return resource


def _finite(value: float) -> float | None:
    # Event payloads are JSON; NaN/inf are not valid JSON numbers.
    return value if math.isfinite(value) else None


def emit_model_registered(name: str, version: int, ref: str, run_id: str | None) -> Event | None:
    """A new immutable version `ref` (`name:version`) exists; `run_id` is the training run."""
    return emit_event(
        MODEL_REGISTERED,
        resource=model_resource(name, version),
        payload={"name": name, "version": version, "ref": ref, "flow_run_id": run_id},
    )


def emit_model_promoted(name: str, version: int, previous: int | None, reason: str) -> Event | None:
    """`name@champion` moved from `previous` (None: there was no champion) to `version`.

    The payload's `ref` is the exact new champion (`name:version`), so an automation can
    score with the version that was promoted even if the alias moves again meanwhile.
    """
    return emit_event(
        MODEL_PROMOTED,
        resource=model_resource(name, version),
        payload={
            "name": name,
            "version": version,
            "ref": f"{name}:{version}",
            "alias": "champion",
            "previous": previous,
            "reason": reason,
        },
    )


def gate_payload(gate: GateReport) -> dict[str, Any]:
    return {
        "decision": gate.decision,
        "reason": gate.reason,
        "statistic": gate.statistic,
        "value": _finite(gate.value),
        "p_value": _finite(gate.p_value),
        "min_abs_r": gate.min_abs_r,
        "alpha": gate.alpha,
        "n_rows": gate.n_rows,
        "features": [f.feature for f in gate.features[:50]],
        "warnings": [w.kind for w in gate.warnings],
    }


def emit_gate_stopped(name: str, gate_report: GateReport) -> Event | None:
    """The correlation gate stopped the run for model `name`: nothing was trained."""
    return emit_event(
        GATE_STOPPED,
        resource=model_resource(name),
        payload={"name": name, **gate_payload(gate_report)},
    )


def emit_model_degraded(report: MonitoringReport) -> Event | None:
    """Scoring found `report.model_ref` degraded: which checks failed, values, thresholds."""
    name, _, version = report.model_ref.rpartition(":")
    failed = [c for c in report.checks if c.failed]
    return emit_event(
        MODEL_DEGRADED,
        resource=model_resource(name, int(version)),
        payload={
            "name": name,
            "version": int(version),
            "ref": report.model_ref,
            "failed": [c.name for c in failed],
            "values": {c.name: c.value for c in failed},
            "thresholds": {c.name: c.threshold for c in failed},
            "rows_scored": report.rows_scored,
            "rows_labelled": report.rows_labelled,
        },
    )
