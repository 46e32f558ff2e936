"""Aliases: set, remove, promote and roll back `name@alias`, each move a compare-and-set
that is logged to the alias audit log (`history`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy import exc as sa_exc

from regflow.registry import index as ix
from regflow.registry.errors import AliasConflict, NotFoundError, RegistryError
from regflow.registry.index import utcnow
from regflow.registry.reading import RegistryBase
from regflow.registry.records import AliasEvent
from regflow.registry.references import ModelRef, check_alias, check_name
from regflow.registry.rows import (
    alias_map,
    alias_version,
    canonical_json,
    default_actor,
    event_from_row,
    version_row,
)


@dataclass(frozen=True)
class AliasMove:
    """An alias move to make in the same transaction as a registration (`register(promote=)`).

    `expected` is the version the alias must still hold (None: it must not exist yet);
    otherwise the whole registration rolls back with AliasConflict.
    """

    alias: str
    expected: int | None
    reason: str
    metrics: Mapping[str, Any] | None = None


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""`set_alias(expected=UNSET)`: move from whatever holds the alias now (still atomic)."""


class AliasesMixin(RegistryBase):
    """Reading and moving aliases, and their audit log."""

    def get_alias(self, name: str, alias: str) -> int | None:
        with self._index.read() as conn:
            return alias_version(conn, check_name(name), check_alias(alias))

    def aliases(self, name: str) -> dict[str, int]:
        with self._index.read() as conn:
            return alias_map(conn, check_name(name))

    def history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """The alias audit log of a model, oldest first."""
        with self._index.read() as conn:
            self._model(conn, check_name(name))
            q = select(ix.alias_events).where(ix.alias_events.c.name == name)
            if alias is not None:
                q = q.where(ix.alias_events.c.alias == check_alias(alias))
            return [event_from_row(r) for r in conn.execute(q.order_by(ix.alias_events.c.id))]

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        expected: int | None = UNSET,
        actor: str | None = None,
        reason: str | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> AliasEvent:
        """Point `name@alias` at `version` if it still points at `expected`, and log it.

        `expected=None` means the alias must not exist yet; an int means it must hold that
        version; UNSET (default) takes the current holder inside the same transaction.
        Raises AliasConflict when the alias moved meanwhile.
        """
        check_name(name)
        check_alias(alias)
        with self._index.write() as conn:
            lock_model(conn, name)
            row = version_row(conn, name, version, lock=True)
            if row is None or row.status != "ready":
                self._model(conn, name)
                state = "was deleted" if row is not None else "does not exist"
                raise NotFoundError(f"{name}:{version} {state}; cannot point {alias!r} at it")
            current = alias_version(conn, name, alias)
            if expected is UNSET:
                expected = current
            return move_alias(conn, name, alias, expected, version, actor, reason, metrics, "set")

    def remove_alias(
        self,
        name: str,
        alias: str,
        *,
        expected: int | None = UNSET,
        actor: str | None = None,
        reason: str | None = None,
    ) -> AliasEvent:
        check_name(name)
        check_alias(alias)
        with self._index.write() as conn:
            lock_model(conn, name)
            current = alias_version(conn, name, alias)
            if current is None:
                raise NotFoundError(f"{name}@{alias} is not set")
            if expected is UNSET:
                expected = current
            return move_alias(conn, name, alias, expected, None, actor, reason, None, "remove")

    def promote(
        self,
        ref: str | ModelRef,
        alias: str = "champion",
        *,
        reason: str | None = None,
        actor: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        expected: int | None = UNSET,
    ) -> AliasEvent:
        """Point `alias` at the version `ref` names; the event records its stored metrics."""
        target = self.resolve(ref)
        return self.set_alias(
            target.name,
            alias,
            target.version,
            expected=expected,
            actor=actor,
            reason=reason or f"promoted {target.ref} to {alias}",
            metrics=metrics if metrics is not None else target.metrics,
        )

    def rollback(
        self,
        name: str,
        alias: str = "champion",
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> AliasEvent:
        """Move `alias` back to the version that held it before its current holder.

        The audit log is replayed as a stack (a set pushes, a rollback pops), so repeated
        rollbacks walk further back instead of flipping between two versions. Holders that
        were deleted since are skipped.
        """
        check_name(name)
        check_alias(alias)
        with self._index.write() as conn:
            self._model(conn, name)
            lock_model(conn, name)
            current = alias_version(conn, name, alias)
            if current is None:
                raise NotFoundError(f"{name}@{alias} is not set; nothing to roll back")
            events = conn.execute(
                select(ix.alias_events)
                .where(ix.alias_events.c.name == name, ix.alias_events.c.alias == alias)
                .order_by(ix.alias_events.c.id)
            ).all()
            stack = _holder_stack(events)
            previous: int | None = None
            while len(stack) > 1:
                stack.pop()
                candidate = version_row(conn, name, stack[-1])
                if candidate is not None and candidate.status == "ready":
                    previous = stack[-1]
                    break
            if previous is None:
                raise RegistryError(
                    f"{name}@{alias} (version {current}) has no earlier holder to roll back to"
                )
            row = version_row(conn, name, previous, lock=True)
            return move_alias(
                conn,
                name,
                alias,
                current,
                previous,
                actor,
                reason or f"rollback of {alias} from version {current} to {previous}",
                row.metrics if row is not None else None,
                "rollback",
            )


def lock_model(conn: Connection, name: str) -> None:
    """Hold the model's row until commit, so its alias moves run one at a time.

    SQLite's write transaction already excludes every other writer. PostgreSQL's READ
    COMMITTED would let two movers read the same holder and one then fail its
    compare-and-set, though neither named an expected version; registering holds the same
    lock (`_ensure_model`), so a registration's promotion queues with them too.
    """
    conn.execute(
        select(ix.registered_models.c.name)
        .where(ix.registered_models.c.name == name)
        .with_for_update()
    )


def move_alias(
    conn: Connection,
    name: str,
    alias: str,
    expected: int | None,
    version: int | None,
    actor: str | None,
    reason: str | None,
    metrics: Mapping[str, Any] | None,
    action: str,
) -> AliasEvent:
    """The compare-and-set itself: move only if the alias still holds `expected`; log it."""
    now = utcnow()
    a = ix.aliases.c
    if expected is None:
        if version is None:
            raise ValueError("removing an alias needs the expected current version")
        try:
            # A savepoint, so a lost race leaves the caller's transaction usable.
            with conn.begin_nested():
                conn.execute(
                    insert(ix.aliases).values(
                        name=name, alias=alias, version=version, updated_at=now
                    )
                )
        except sa_exc.IntegrityError:
            raise AliasConflict(name, alias, None, alias_version(conn, name, alias)) from None
    else:
        where = (a.name == name, a.alias == alias, a.version == expected)
        if version is None:
            done = conn.execute(delete(ix.aliases).where(*where))
        else:
            done = conn.execute(
                update(ix.aliases).where(*where).values(version=version, updated_at=now)
            )
        if done.rowcount != 1:
            raise AliasConflict(name, alias, expected, alias_version(conn, name, alias))
    result = conn.execute(
        insert(ix.alias_events)
        .values(
            time=now,
            name=name,
            alias=alias,
            action=action,
            from_version=expected,
            to_version=version,
            actor=actor or default_actor(),
            reason=reason,
            metrics=json.loads(canonical_json(dict(metrics))) if metrics else None,
        )
        .returning(ix.alias_events)
    )
    return event_from_row(result.one())


def _holder_stack(events: Sequence[Row[Any]]) -> list[int]:
    """The alias's holders replayed from its log: a set pushes, a rollback pops."""
    stack: list[int] = []
    for e in events:
        if e.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != e.to_version:  # keep the stack in step with the log
                stack.append(e.to_version)
        elif e.action == "remove":
            stack = []
        elif not stack or stack[-1] != e.to_version:
            stack.append(e.to_version)
    return stack
