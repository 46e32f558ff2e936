"""The model registry: immutable versions, aliases moved by compare-and-set, verified loading.

`Registry` only puts its parts together; each job lives in its own module:

- reading.py   the shared state (index, store, location), listing and `resolve`
- location.py  `Registry.open`: folder or database URL, env vars, default location
- versions.py  `register` and `delete`: run folders, version numbers, manifests
- aliases.py   `set_alias`, `remove_alias`, `promote`, `rollback`, `history`
- integrity.py `verify`, `leftovers`, `gc` and the per-file checks
- loading.py   `load`, `card`, `export`, `export_joblib` (verified before use)
- monitoring.py `record_monitoring`, `list_monitoring` (scoring runs' verdicts)
- rows.py      index rows to `ModelVersion`, `AliasEvent`, `RegisteredModel`
"""

from __future__ import annotations

from regflow.registry.aliases import AliasesMixin
from regflow.registry.integrity import IntegrityMixin
from regflow.registry.loading import LoadingMixin
from regflow.registry.location import LocationMixin
from regflow.registry.monitoring import MonitoringMixin
from regflow.registry.versions import VersionsMixin


class Registry(
    LocationMixin, VersionsMixin, AliasesMixin, LoadingMixin, IntegrityMixin, MonitoringMixin
):
    """Index (SQL via SQLAlchemy Core) + file store. Safe to use from many processes.

    Open one with `Registry.open(...)`; every mixin shares `RegistryBase`'s state.
    """
