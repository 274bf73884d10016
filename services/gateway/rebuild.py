"""``pettycash projections rebuild``: the read models recreated from the services' own state.

Each service answers ``<service>.export_read_models`` (on its queries queue) with pages of
the same snapshots it publishes live. They are projected with ``replace_equal`` (a row of the
same version is rewritten, repairing it) while newer live snapshots keep winning, so the
system can run meanwhile. Rows no service has any more and that were projected before the
rebuild began are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, select

from services.gateway.readmodels import TABLES, project_many
from shared.contracts import catalog, instances
from shared.contracts.catalog import TaskSpec
from shared.contracts.readmodels import DOCUMENTS
from shared.db.engine import Database
from shared.db.types import utcnow

log = logging.getLogger(__name__)

Ask = Callable[[TaskSpec, dict[str, Any]], dict[str, Any]]
PAGE = 1000

EVENT_OF_KIND: dict[str, catalog.EventSpec] = {
    "requisition": catalog.REQUISITION_CHANGED,
    "approval_case": catalog.APPROVAL_CASE_CHANGED,
    "account": catalog.ACCOUNT_CHANGED,
    "payment": catalog.PAYMENT_CHANGED,
    "alert": catalog.ALERT_RECORDED,
    "authenticator": catalog.AUTHENTICATOR_CHANGED,
    "replenishment": catalog.REPLENISHMENT_CHANGED,
    "float_day": catalog.FLOAT_DAY_CHANGED,
    "cash_count": catalog.CASH_COUNT_CHANGED,
    "payment_run": catalog.PAYMENT_RUN_CHANGED,
    **dict.fromkeys(DOCUMENTS, catalog.DOCUMENT_CHANGED),
}


def rebuild(db: Database, ask: Ask, kinds: Iterable[str] | None = None) -> dict[str, int]:
    """Re-project every read model (or those named); returns how many rows each kind has now."""
    wanted = set(kinds) if kinds else set(EVENT_OF_KIND)
    counts: dict[str, int] = {}
    for service, service_kinds in catalog.READ_MODELS.items():
        for kind in service_kinds:
            if kind in wanted:
                counts[kind] = _rebuild_kind(db, ask, service, kind)
                log.info("rebuilt %s: %d", kind, counts[kind])
    return counts


def _rebuild_kind(db: Database, ask: Ask, service: str, kind: str) -> int:
    started = utcnow()
    spec = EVENT_OF_KIND[kind]
    schema = instances.schema(spec.payload)
    seen: set[str] = set()
    after: str | None = None
    while True:
        page = ask(catalog.EXPORTS[service], {"kind": kind, "after": after, "limit": PAGE})
        items = [schema.load(item) for item in page["items"]]
        with db.uow() as uow:
            project_many(uow.session, spec.name, items, replace_equal=True)
            uow.commit()
        seen.update(str(item["id"]) for item in items)
        after = page["next"]
        if after is None:
            break
    _drop_vanished(db, kind, seen, started)
    return len(seen)


def _drop_vanished(db: Database, kind: str, seen: set[str], started: Any) -> None:
    table = TABLES[kind]
    with db.uow() as uow:
        query = select(table.c.id).where(table.c.projected_at < started)
        if kind in DOCUMENTS:
            query = query.where(table.c.id == kind)
        gone = [key for key in uow.session.scalars(query) if str(key) not in seen]
        for start in range(0, len(gone), 1000):
            uow.session.execute(delete(table).where(table.c.id.in_(gone[start : start + 1000])))
        uow.commit()
    if gone:
        log.warning("removed %d %s rows no service has", len(gone), kind)
