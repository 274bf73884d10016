"""The gateway's projections: read models kept from the services' snapshots, one table per kind.

Every GET is answered from these tables with one scoped query. A snapshot is applied only if
it is newer than the row (``version``), so duplicates, re-sends and reordering converge on
the newest state; the projector (``pettycash worker gateway``) applies the snapshots the
services publish, and the gateway applies those a command's reply carries before it
answers, so a user always reads their own write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.orm import Session

from services.gateway.models import Branch, metadata
from shared.contracts import catalog, instances
from shared.contracts.envelope import Envelope
from shared.db import upsert
from shared.db.types import JSONType, UTCDateTime, utcnow
from shared.db.uow import UnitOfWork

log = logging.getLogger(__name__)


def _stamps() -> list[Column[Any]]:
    # source_at: when the service published the snapshot; projected_at: when it got here.
    return [
        Column("version", BigInteger, nullable=False),
        Column("body", JSONType, nullable=False),
        Column("source_at", UTCDateTime, nullable=False),
        Column("projected_at", UTCDateTime, nullable=False),
    ]


rm_requisitions = Table(
    "rm_requisitions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("branch_id", String(64), nullable=False),
    Column("region_id", String(64), nullable=False),
    Column("requester_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The body without its history and receipts, as lists show it (read without the rest).
    Column("summary", JSONType, nullable=True),
    *_stamps(),
)
# Lists sort newest first within a scope: one index per way of scoping.
_newest = (rm_requisitions.c.created_at, rm_requisitions.c.id)
Index("ix_rm_requisitions_requester", rm_requisitions.c.requester_id, *_newest)
Index("ix_rm_requisitions_branch", rm_requisitions.c.branch_id, *_newest)
Index("ix_rm_requisitions_region", rm_requisitions.c.region_id, *_newest)
Index("ix_rm_requisitions_created", *_newest)
# The dashboard counts the requisitions in each open state (a small share of them all).
Index("ix_rm_requisitions_status", rm_requisitions.c.status, rm_requisitions.c.branch_id)

rm_approval_cases = Table(
    "rm_approval_cases",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("requisition_id", String(64), nullable=False, unique=True),
    Column("branch_id", String(64), nullable=False),
    Column("region_id", String(64), nullable=False),
    Column("requester_id", String(64), nullable=False),
    Column("status", String(24), nullable=False),
    # The active step, when one waits for a decision (null otherwise): the inbox's columns.
    Column("step_role", String(32), nullable=True),
    Column("step_role_covers", Boolean, nullable=False, default=False),
    Column("admin_may_act", Boolean, nullable=False, default=False),
    Column("admin_covers", Boolean, nullable=False, default=False),
    Column("due_at", UTCDateTime, nullable=True),
    Column("item", JSONType, nullable=True),
    *_stamps(),
)
Index("ix_rm_approval_cases_inbox", rm_approval_cases.c.step_role, rm_approval_cases.c.due_at)

# Who already decided a step of a case's current revision (they may not decide another).
rm_case_deciders = Table(
    "rm_case_deciders",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
)

rm_accounts = Table(
    "rm_accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("code", String(96), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("branch_id", String(64), nullable=True, index=True),
    Column("region_id", String(64), nullable=True),
    Column("float", JSONType, nullable=True),
    *_stamps(),
)

rm_payments = Table(
    "rm_payments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("requisition_id", String(64), nullable=False, unique=True),
    Column("branch_id", String(64), nullable=False),
    Column("region_id", String(64), nullable=False),
    Column("state", String(16), nullable=False, server_default="processing"),
    Column("completed_at", UTCDateTime, nullable=True),
    *_stamps(),
)
Index("ix_rm_payments_completed", rm_payments.c.completed_at)

rm_alerts = Table(
    "rm_alerts",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("branch_id", String(64), nullable=True),
    Column("region_id", String(64), nullable=True),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("severity", String(16), nullable=False, server_default="warning"),
    Column("kind", String(48), nullable=False, server_default=""),
    *_stamps(),
)
Index("ix_rm_alerts_raised", rm_alerts.c.raised_at)
Index("ix_rm_alerts_status", rm_alerts.c.status, rm_alerts.c.last_seen_at)
Index("ix_rm_alerts_branch", rm_alerts.c.branch_id, rm_alerts.c.raised_at)
Index("ix_rm_alerts_region", rm_alerts.c.region_id, rm_alerts.c.raised_at)

# Who has an authenticator (payment service): a sign-in asks for a code only if it is active.
rm_authenticators = Table(
    "rm_authenticators",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    *_stamps(),
)

# Replenishment requests (ledger): the ones waiting for a decision first, oldest first.
rm_replenishments = Table(
    "rm_replenishments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("branch_id", String(64), nullable=False),
    Column("region_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    *_stamps(),
)
Index("ix_rm_replenishments_status", rm_replenishments.c.status, rm_replenishments.c.requested_at)

# Each float's days (ledger): the dashboard's 30-day history and trailing spend.
rm_float_days = Table(
    "rm_float_days",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("branch_id", String(64), nullable=False),
    Column("region_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("day", Date, nullable=False),
    Column("funded_minor", BigInteger, nullable=False),
    Column("spent_minor", BigInteger, nullable=False),
    Column("closing_balance_minor", BigInteger, nullable=False),
    Column("closing_available_minor", BigInteger, nullable=False),
    *_stamps(),
)
Index("ix_rm_float_days_day", rm_float_days.c.day, rm_float_days.c.branch_id)

# Cash counts (ledger): a float's till counted, and the variance's decision.
rm_cash_counts = Table(
    "rm_cash_counts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("branch_id", String(64), nullable=False),
    Column("region_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("counted_at", UTCDateTime, nullable=False),
    *_stamps(),
)
Index("ix_rm_cash_counts_branch", rm_cash_counts.c.branch_id, rm_cash_counts.c.counted_at)

# Payment runs (payment): many payments authorised with one code; their progress is their
# payments' (rm_payments), read beside them.
rm_payment_runs = Table(
    "rm_payment_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    *_stamps(),
)
Index("ix_rm_payment_runs_created", rm_payment_runs.c.created_at)

rm_documents = Table(
    "rm_documents",
    metadata,
    Column("id", String(32), primary_key=True),
    *_stamps(),
)

TABLES: dict[str, Table] = {
    "requisition": rm_requisitions,
    "approval_case": rm_approval_cases,
    "account": rm_accounts,
    "payment": rm_payments,
    "alert": rm_alerts,
    "authenticator": rm_authenticators,
    "replenishment": rm_replenishments,
    "float_day": rm_float_days,
    "cash_count": rm_cash_counts,
    "payment_run": rm_payment_runs,
    "policy": rm_documents,
    "caps": rm_documents,
    "ledger_check": rm_documents,
    "ledger_totals": rm_documents,
}


def kind_of(event_type: str, payload: dict[str, Any]) -> str:
    """The read-model kind a snapshot event describes."""
    if event_type == catalog.DOCUMENT_CHANGED.name:
        return str(payload["id"])
    return {
        catalog.REQUISITION_CHANGED.name: "requisition",
        catalog.APPROVAL_CASE_CHANGED.name: "approval_case",
        catalog.ACCOUNT_CHANGED.name: "account",
        catalog.PAYMENT_CHANGED.name: "payment",
        catalog.ALERT_RECORDED.name: "alert",
        catalog.AUTHENTICATOR_CHANGED.name: "authenticator",
        catalog.REPLENISHMENT_CHANGED.name: "replenishment",
        catalog.FLOAT_DAY_CHANGED.name: "float_day",
        catalog.CASH_COUNT_CHANGED.name: "cash_count",
        catalog.PAYMENT_RUN_CHANGED.name: "payment_run",
    }[event_type]


# The columns each kind's projection copies from its snapshot, beside id, version and body.
COLUMNS: dict[str, tuple[str, ...]] = {
    "requisition": ("branch_id", "region_id", "requester_id", "status", "created_at"),
    "approval_case": ("requisition_id", "branch_id", "region_id", "requester_id", "status"),
    "account": ("code", "kind", "currency", "branch_id", "region_id", "float"),
    "payment": ("requisition_id", "branch_id", "region_id", "state", "completed_at"),
    "alert": ("branch_id", "raised_at", "last_seen_at", "status", "severity", "kind"),
    "authenticator": ("status",),
    "replenishment": ("branch_id", "region_id", "status", "requested_at"),
    "cash_count": ("branch_id", "region_id", "status", "counted_at"),
    "payment_run": ("state", "created_at"),
    "float_day": (
        "branch_id",
        "region_id",
        "currency",
        "day",
        "funded_minor",
        "spent_minor",
        "closing_balance_minor",
        "closing_available_minor",
    ),
}


def summary_of(body: dict[str, Any]) -> dict[str, Any]:
    """A requisition as lists show it: without its history and receipts."""
    return {k: v for k, v in body.items() if k not in ("history", "receipts")}


def _row(kind: str, payload: dict[str, Any], session: Session) -> dict[str, Any]:
    """The projection row of a loaded snapshot payload."""
    row: dict[str, Any] = {
        "id": payload["id"],
        "version": payload["version"],
        "body": payload["body"],
        "source_at": payload["at"],
        "projected_at": utcnow(),
    }
    row.update({k: payload[k] for k in COLUMNS.get(kind, ())})
    if kind == "approval_case":
        inbox = payload["inbox"] or {}
        row.update(
            step_role=inbox.get("step_role"),
            step_role_covers=inbox.get("step_role_covers", False),
            admin_may_act=inbox.get("admin_may_act", False),
            admin_covers=inbox.get("admin_covers", False),
            due_at=inbox.get("due_at"),
            item=inbox.get("item"),
        )
    elif kind == "requisition":
        row["summary"] = summary_of(payload["body"])
    elif kind == "alert":
        row["id"] = int(payload["id"])
        row["region_id"] = _region_of(session, payload["branch_id"])
    return row


def _region_of(session: Session, branch_id: str | None) -> str | None:
    """The region of a branch, from the gateway's own identity tables."""
    if not branch_id:
        return None
    try:
        key = uuid.UUID(branch_id)
    except ValueError:
        return None
    region = session.scalar(select(Branch.region_id).where(Branch.id == key))
    return None if region is None else str(region)


def project(session: Session, event_type: str, payload: dict[str, Any], *, replace_equal: bool = False) -> bool:
    """Apply one loaded snapshot if it is newer than what the projection holds; True if applied.

    ``replace_equal`` also rewrites a row of the same version (a rebuild repairing a row).
    """
    return bool(project_many(session, event_type, [payload], replace_equal=replace_equal))


def project_many(
    session: Session, event_type: str, payloads: list[dict[str, Any]], *, replace_equal: bool = False
) -> int:
    """Apply loaded snapshots of one event type, one statement per kind; returns how many applied.

    Each row is written only if its version is newer than the projection's (or equal, with
    ``replace_equal``). Two snapshots of one aggregate in one call keep the newest.
    """
    applied = 0
    for kind, newest in _newest_by_kind(session, event_type, payloads).items():
        ids = _upsert_newer(session, TABLES[kind], [row for row, _ in newest.values()], replace_equal)
        applied += len(ids)
        if kind == "approval_case" and ids:
            _replace_deciders(session, {i: newest[i][1] for i in ids})
    return applied


def _newest_by_kind(
    session: Session, event_type: str, payloads: list[dict[str, Any]]
) -> dict[str, dict[Any, tuple[dict[str, Any], list[str]]]]:
    """Each snapshot's row (and its case's deciders), the newest per aggregate, by kind."""
    by_kind: dict[str, dict[Any, tuple[dict[str, Any], list[str]]]] = {}
    for payload in payloads:
        kind = kind_of(event_type, payload)
        rows = by_kind.setdefault(kind, {})
        row = _row(kind, payload, session)
        if row["id"] not in rows or rows[row["id"]][0]["version"] < row["version"]:
            rows[row["id"]] = (row, list((payload.get("inbox") or {}).get("deciders", [])))
    return by_kind


def _upsert_newer(session: Session, table: Table, rows: list[dict[str, Any]], replace_equal: bool) -> list[Any]:
    """Insert the rows or overwrite older versions; the ids written."""
    stmt = upsert.insert(session, table).values(rows)
    newer = table.c.version <= stmt.excluded.version if replace_equal else table.c.version < stmt.excluded.version
    written = stmt.on_conflict_do_update(
        index_elements=["id"], set_={k: stmt.excluded[k] for k in rows[0] if k != "id"}, where=newer
    ).returning(table.c.id)
    return list(session.scalars(written))


def _replace_deciders(session: Session, deciders_of: dict[Any, list[str]]) -> None:
    """The people who already decided each approval case written (the inbox leaves them out)."""
    session.execute(delete(rm_case_deciders).where(rm_case_deciders.c.case_id.in_(list(deciders_of))))
    rows = [{"case_id": case, "user_id": user} for case, users in deciders_of.items() for user in users]
    if rows:
        session.execute(insert(rm_case_deciders), rows)


def apply_reply_snapshots(uow_factory: Callable[[], UnitOfWork], snapshots: list[dict[str, Any]]) -> None:
    """Project the snapshots a command's reply carries, before the gateway answers it."""
    if not snapshots:
        return
    try:
        with uow_factory() as uow:
            _project_reply(uow.session, snapshots)
            uow.commit()
    except Exception:
        # The command took effect; only its early projection failed. The projector applies
        # the same snapshots from the outbox, so the answer stays the command's.
        log.exception("could not project a reply's snapshots; the projector will")


def commit_with_reply_snapshots(
    uow: UnitOfWork, write: Callable[[Session], None], snapshots: list[dict[str, Any]]
) -> None:
    """Commit ``write`` with the snapshots a command's reply carries projected in the same
    transaction (the one that stores the answer). Should the projection fail, ``write`` is
    committed alone, as the projector applies the same snapshots from the outbox: a second
    transaction on that rare path, where a savepoint would cost two round trips every time."""
    write(uow.session)
    try:
        _project_reply(uow.session, snapshots)
    except Exception:
        log.exception("could not project a reply's snapshots; the projector will")
        uow.rollback()
        write(uow.session)
    uow.commit()


def _project_reply(session: Session, snapshots: list[dict[str, Any]]) -> None:
    for snapshot in snapshots:
        spec = catalog.EVENTS[snapshot["type"]]
        project(session, snapshot["type"], instances.schema(spec.payload).load(snapshot["payload"]))


def on_snapshot(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """The projector's handler of every snapshot event."""
    project(uow.session, envelope.type, payload)


def lag_seconds(session: Session, since: datetime) -> list[float]:
    """Projection lags (service publish to projection) of rows projected since ``since``."""
    lags: list[float] = []
    for table in (rm_requisitions, rm_approval_cases, rm_accounts, rm_payments):
        rows = session.execute(
            select(table.c.source_at, table.c.projected_at).where(table.c.projected_at >= since)
        ).all()
        lags += [(p - s).total_seconds() for s, p in rows]
    return lags
