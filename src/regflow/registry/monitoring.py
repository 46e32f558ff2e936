"""Monitoring records: each scoring run's verdict on the version it used, append-only.

Kept in the index beside the version it judges, so `regflow models monitor NAME` reads one
history per model whatever machine scored; the Prefect artifact `<model>-monitoring` shows
the same table in the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import insert, inspect, select

from regflow.registry import index as ix
from regflow.registry.errors import NotFoundError
from regflow.registry.index import utcnow
from regflow.registry.reading import RegistryBase
from regflow.registry.records import MonitoringRecord
from regflow.registry.references import check_name
from regflow.registry.rows import version_row


class MonitoringMixin(RegistryBase):
    """`record_monitoring` and `list_monitoring`."""

    def record_monitoring(
        self,
        name: str,
        version: int,
        *,
        status: Literal["ok", "degraded"],
        rows: int,
        failed: Sequence[str],
        report: dict[str, Any],
        run_id: str | None = None,
        data_sha256: str | None = None,
    ) -> MonitoringRecord:
        """Append one verdict on `name:version` (NotFoundError if there is no such version)."""
        check_name(name)
        with self._index.write() as conn:
            if version_row(conn, name, version) is None:
                raise NotFoundError(f"{name}:{version} does not exist")
            values = {
                "time": utcnow(),
                "name": name,
                "version": version,
                "status": status,
                "run_id": run_id,
                "data_sha256": data_sha256,
                "rows": rows,
                "failed": list(failed),
                "report": report,
            }
            new_id = conn.execute(insert(ix.monitoring).values(**values)).inserted_primary_key
        return MonitoringRecord(id=int(new_id[0]), **values)  # type: ignore[index]

    def list_monitoring(
        self, name: str, *, version: int | None = None, limit: int | None = None
    ) -> list[MonitoringRecord]:
        """The verdicts on `name` (one version's, with `version`), newest last; `limit` keeps
        the newest ones. An index from before monitoring existed (read-only) has none."""
        check_name(name)
        with self._index.read() as conn:
            self._model(conn, name)  # NotFoundError for an unknown model
            if not inspect(conn).has_table(ix.monitoring.name):
                return []
            query = select(ix.monitoring).where(ix.monitoring.c.name == name)
            if version is not None:
                query = query.where(ix.monitoring.c.version == version)
            query = query.order_by(ix.monitoring.c.id.desc())
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
        records = [MonitoringRecord.model_validate(row._asdict()) for row in rows]
        return records[::-1]
