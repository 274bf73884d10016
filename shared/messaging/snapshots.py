"""Read-model snapshots: every change to an aggregate is published as its whole, versioned state.

The gateway serves every read from its own projections. Rather than teach it to replay each
service's domain events (and keep that logic in step with the services'), a service
publishes, in the same transaction as the change, a snapshot of each aggregate the change
touched: its id, a version one higher than the last, the columns the gateway filters and
scopes by, and the body the API shows. The gateway keeps the highest version it has seen,
so duplicated, re-sent or reordered snapshots converge on the newest state, and a rebuild is
the same snapshots read back page by page (``export``).

Which rows touch which aggregate is declared once per service (:meth:`Snapshots.track`), and
an ``after_flush`` hook records every new, changed or deleted tracked row, so a use case
cannot change an aggregate and forget to publish it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.catalog import EventSpec
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db import upsert
from shared.db.types import utcnow
from shared.messaging.tables import read_model_versions

TOUCHED = "pettycash.touched"
BUILT = "pettycash.built"

Builder = Callable[[Session, Sequence[Any]], list[dict[str, Any]]]
KeyOf = Callable[[Any], tuple[str, Any] | None]


@dataclass(frozen=True)
class ReadModel:
    """One kind of aggregate a service publishes: its event, its builder, the table it is paged
    from (none for a document: there is one of it, keyed by its kind)."""

    kind: str
    event: EventSpec
    build: Builder
    table: Table | None = None

    def keys(self, session: Session, after: str | None, limit: int) -> list[Any]:
        """One page of the aggregates' keys, in order."""
        if self.table is None:
            return [self.kind] if after is None else []
        id_column = next(iter(self.table.primary_key.columns))
        query = select(id_column).order_by(id_column).limit(limit)
        if after is not None:
            query = query.where(id_column > _as_key(id_column, after))
        return list(session.scalars(query))


def touch(session: Session, kind: str, key: Any) -> None:
    """Mark an aggregate as changed in this transaction (for changes no tracked row shows)."""
    session.info.setdefault(TOUCHED, set()).add((kind, key))
    session.info.get(BUILT, {}).pop((kind, key), None)  # changed again: what was built is old


def built(session: Session, kind: str, key: Any, snapshot: dict[str, Any]) -> None:
    """The snapshot a use case just built of an aggregate whose changes are flushed (its reply's
    body, say): the commit publishes it rather than build it again, unless the aggregate
    changes once more before then (:func:`touch` forgets it)."""
    session.info.setdefault(BUILT, {})[(kind, key)] = snapshot


class Snapshots:
    """A service's read models and the rows that change them."""

    def __init__(self) -> None:
        self.models: dict[str, ReadModel] = {}
        self._keys: dict[type, KeyOf] = {}
        self._quiet: dict[type, frozenset[str]] = {}

    def model(self, kind: str, event_spec: EventSpec, build: Builder, table: Table | None = None) -> None:
        """Declare a read model: ``build(session, ids)`` returns the snapshots of those aggregates
        (each with ``id``, its scope columns and ``body``; the version and time are added here)."""
        self.models[kind] = ReadModel(kind, event_spec, build, table)

    def track(self, model_class: type, key_of: KeyOf, quiet: Iterable[str] = ()) -> None:
        """Rows of ``model_class`` belong to the aggregate ``key_of(row)`` names. A change of
        ``quiet`` columns alone (a lease taken, its time) is no change the read model shows."""
        self._keys[model_class] = key_of
        self._quiet[model_class] = frozenset(quiet)

    def _shows_change(self, obj: Any) -> bool:
        """A changed row changes what its read model shows, unless only quiet columns changed."""
        quiet = self._quiet.get(type(obj))
        if not quiet:
            return True
        return any(attr.history.has_changes() for attr in inspect(obj).attrs if attr.key not in quiet)

    def install(self, sessions: sessionmaker[Session]) -> None:
        """Record, at every flush, which aggregates the flushed rows belong to."""

        # after_flush: ids generated at INSERT are known, and new/dirty/deleted still list
        # what this flush wrote.
        @event.listens_for(sessions, "after_flush")
        def _collect(session: Session, _context: Any) -> None:
            dirty = [obj for obj in session.dirty if self._shows_change(obj)]
            for obj in (*session.new, *dirty, *session.deleted):
                key_of = self._keys.get(type(obj))
                key = key_of(obj) if key_of is not None else None
                if key is not None:
                    touch(session, *key)

        @event.listens_for(sessions, "after_rollback")
        def _forget(session: Session) -> None:
            session.info.pop(TOUCHED, None)
            session.info.pop(BUILT, None)

    def publish_touched(self, session: Session) -> list[Envelope]:
        """Bump the version of every touched aggregate and describe each in an event.

        Called just before commit. The bump locks the aggregate's version row until commit, so
        of two transactions changing one aggregate the later-committing one gets the higher
        version and, building its body after the other committed, describes both changes.
        """
        session.flush()
        touched: set[tuple[str, Any]] = session.info.pop(TOUCHED, set())
        ready: dict[tuple[str, Any], dict[str, Any]] = session.info.pop(BUILT, {})
        envelopes: list[Envelope] = []
        by_kind: dict[str, list[Any]] = {}
        for kind, key in touched:
            by_kind.setdefault(kind, []).append(key)
        at = utcnow().isoformat()
        for kind in sorted(by_kind):
            model = self.models[kind]
            ids = sorted(by_kind[kind], key=str)
            versions = self._bump(session, model, ids)
            unbuilt = [key for key in ids if (kind, key) not in ready]
            known = [ready[(kind, key)] for key in ids if (kind, key) in ready]
            for snapshot in [*known, *(model.build(session, unbuilt) if unbuilt else [])]:
                snapshot.update(version=versions[str(snapshot["id"])], at=at)
                envelopes.append(Envelope(type=model.event.name, payload=snapshot, actor=SYSTEM_ACTOR))
        session.info.pop(TOUCHED, None)  # the bump's own flush must not re-touch
        return envelopes

    @staticmethod
    def _bump(session: Session, model: ReadModel, ids: Iterable[Any]) -> dict[str, int]:
        """One statement, rows in key order: concurrent bumps lock in the same order."""
        values = [{"kind": model.kind, "key": str(key), "version": 1} for key in ids]
        stmt = upsert.insert(session, read_model_versions).values(values)
        rows = session.execute(
            stmt.on_conflict_do_update(
                index_elements=["kind", "key"], set_={"version": read_model_versions.c.version + 1}
            ).returning(read_model_versions.c.key, read_model_versions.c.version)
        ).all()
        return {row.key: int(row.version) for row in rows}

    def export(self, session: Session, kind: str, after: str | None, limit: int) -> dict[str, Any]:
        """One page of a read model's current snapshots, in id order (for a rebuild)."""
        model = self.models[kind]
        keys = model.keys(session, after, limit)
        found = session.execute(
            select(read_model_versions.c.key, read_model_versions.c.version).where(
                read_model_versions.c.kind == kind, read_model_versions.c.key.in_([str(k) for k in keys])
            )
        ).all()
        versions = {str(k): 0 for k in keys} | {row.key: int(row.version) for row in found}
        at = utcnow().isoformat()
        items = model.build(session, keys)
        for snapshot in items:
            snapshot.update(version=versions[str(snapshot["id"])], at=at)
        return {"kind": kind, "items": items, "next": str(keys[-1]) if len(keys) == limit else None}


def _as_key(column: Any, value: str) -> Any:
    python_type = getattr(column.type, "python_type", str)
    return python_type(value) if python_type is not str else value
