"""Unchanged input, no new version: the nightly run on yesterday's data registers nothing.

A run's fingerprint is the SHA-256 of its data's SHA-256, the settings that shape the model
and the regflow version. The lookup is a Prefect task cached on its inputs and source
(Prefect's own idiom: the UI shows the step as Cached), and its inputs include the newest
version number of the model, so any registration since changes the key. The registry stays
the source of truth: the flow confirms a cached answer against the version's lineage before
it trusts it; a version deleted since, or one whose files fail verification, is no answer.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from regflow.registry import ModelVersion, NotFoundError, Registry
from regflow.registry.rows import canonical_json

CACHE_DAYS = 30  # a nightly run that finds no change keeps finding it from the cache


def run_fingerprint(data_sha256: str, settings: dict[str, Any], regflow_version: str) -> str:
    """SHA-256 over the data's own SHA-256, the model-shaping settings and regflow's version."""
    payload = {"data_sha256": data_sha256, "settings": settings, "regflow": regflow_version}
    return hashlib.sha256(canonical_json(payload)).hexdigest()


# Keyed on the registry's location as shown (no password), not on how it was named: the
# `registry` argument may be a database URL with credentials, and it opens the same index.
@task(
    name="unchanged-check",
    cache_policy=(INPUTS - "registry") + TASK_SOURCE,
    cache_expiration=timedelta(days=CACHE_DAYS),
    persist_result=True,
    result_serializer="json",
)
def find_unchanged_version(
    location: str,
    registry: str | None,
    name: str,
    data_sha256: str,
    fingerprint: str,
    newest_version: int,
    model_created_at: str,
    store: str | None = None,
) -> int | None:
    """The number of a live version of `name` with this fingerprint, or None.

    `location`, `newest_version` and `model_created_at` are not read here: they are part
    of the cache key, so that a version registered since the cached answer, or a model
    deleted and made again under the same name, makes the next lookup run again.
    """
    with Registry.open(registry, store=store, create=False) as reg:
        found = reg.find_unchanged(name, data_sha256, fingerprint)
    return found.version if found else None


def unchanged_version(
    registry: str | None, name: str, data_sha256: str, fingerprint: str, store: str | None = None
) -> tuple[ModelVersion, str] | None:
    """The existing version this run would duplicate (confirmed against the registry) and
    where the registry is, or None."""
    try:
        reg = Registry.open(registry, store=store, create=False)
    except NotFoundError:  # no registry yet: nothing to duplicate (and none is created)
        return None
    with reg:
        newest = reg.latest_version_number(name)
        if newest is None:
            return None
        created = reg.get_model(name).created_at
        number = find_unchanged_version(
            reg.location, registry, name, data_sha256, fingerprint, newest, created, store
        )
        if number is None:
            return None
        try:
            version = reg.resolve(f"{name}:{number}")
        except NotFoundError:  # deleted since the answer was cached
            return None
        if version.lineage.get("fingerprint") != fingerprint or version.data_sha256 != data_sha256:
            return None
        problems = reg.verify(version.ref)
    if problems:  # a damaged version is no reason to skip training: train a sound one
        get_run_logger().warning(
            "%s has the same fingerprint but failed verification (%s): training anyway",
            version.ref,
            problems[0].message,
        )
        return None
    return version, reg.location
