"""Every read the API serves: one scoped SQL query on the gateway's projections each.

Scope is part of each query and fails closed (``scope_clause``): a row outside the actor's
scope is never loaded, so filters, ``LIMIT`` and ``OFFSET`` see only rows the actor may see
and a page is never short.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import Session

from services.gateway.readmodels import (
    rm_accounts,
    rm_alerts,
    rm_approval_cases,
    rm_case_deciders,
    rm_cash_counts,
    rm_documents,
    rm_float_days,
    rm_payments,
    rm_replenishments,
    rm_requisitions,
    summary_of,
)
from shared.contracts.envelope import Actor
from shared.contracts.permissions import Action, may, permission
from shared.contracts.roles import GLOBAL_ROLES, REGION_ROLES
from shared.db.scope import in_scope

# Reads run on a connection outside a transaction (one statement each) or in a unit of work.
Reader = Session | Connection

INBOX_LIMIT = 100
ALERTS_LIMIT = 100


def scope_clause(table: Table, actor: Actor) -> ColumnElement[bool]:
    """Rows of branches the actor's roles cover: ``shared.contracts.roles.can_see_branch`` in SQL."""
    return in_scope(actor, table.c.branch_id, table.c.region_id)


def list_requisitions(
    session: Reader,
    actor: Actor,
    *,
    scope: str,
    status: str | None,
    branch_id: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Mine, my branch's (one or all of them), or everything my scope covers; newest first."""
    t = rm_requisitions
    # The summary the projector kept (a row projected before it kept one: its body, cut here).
    query = select(func.coalesce(t.c.summary, t.c.body)).order_by(t.c.created_at.desc(), t.c.id.desc())
    query = query.where(t.c.requester_id == actor.user_id if scope == "mine" else scope_clause(t, actor))
    if scope == "branch":
        query = query.where(t.c.branch_id.in_([branch_id] if branch_id else sorted(actor.branch_ids)))
    elif branch_id:
        query = query.where(t.c.branch_id == branch_id)
    if status:
        query = query.where(t.c.status == status)
    rows = session.scalars(query.limit(limit).offset(offset)).all()
    return {"items": [summary_of(body) for body in rows], "limit": limit, "offset": offset}


def get_requisition(session: Reader, actor: Actor, requisition_id: str) -> dict[str, Any] | None:
    """A requisition with its history, receipts and approval case; None if absent or out of scope
    (the two look alike, so nobody can probe for other branches' ids)."""
    r, c = rm_requisitions, rm_approval_cases
    row = session.execute(
        select(r.c.body, c.c.body.label("approval"), scope_clause(c, actor).label("case_visible"))
        .outerjoin(c, c.c.requisition_id == r.c.id)
        .where(r.c.id == requisition_id, or_(scope_clause(r, actor), r.c.requester_id == actor.user_id))
    ).first()
    if row is None:
        return None
    return {**row.body, "approval": row.approval if row.case_visible else None}


def _in_scope_as(step_role: ColumnElement[str], actor: Actor) -> ColumnElement[bool]:
    """The active step's role is one the actor holds with a scope covering the case's branch."""
    c = rm_approval_cases
    clauses: list[ColumnElement[bool]] = []
    for role in sorted(actor.roles & permission(Action.DECIDE_APPROVAL).roles):
        if role in GLOBAL_ROLES:
            clauses.append(step_role == role)
        elif role in REGION_ROLES:
            clauses.append(and_(step_role == role, c.c.region_id.in_(sorted(actor.region_ids))))
        else:
            clauses.append(and_(step_role == role, c.c.branch_id.in_(sorted(actor.branch_ids))))
    return or_(*clauses) if clauses else false()


def inbox(session: Reader, actor: Actor, limit: int = INBOX_LIMIT) -> dict[str, Any]:
    """Open cases whose active step this actor may decide now, the most overdue first.

    The rules of ``services.approval.domain.check_decider`` as columns: not the requester, not
    already in the chain, the step's role in scope with a limit that covers the amount, or an
    admin where the step escalated to admins and the admin limit covers it.
    """
    c, d = rm_approval_cases, rm_case_deciders
    in_scope = _in_scope_as(c.c.step_role, actor)
    may_decide = and_(in_scope, c.c.step_role_covers.is_(True))
    if may(actor, Action.ACT_ON_ESCALATED_APPROVAL):
        as_admin = and_(c.c.admin_may_act.is_(True), c.c.admin_covers.is_(True), not_(in_scope))
        may_decide = or_(may_decide, as_admin)
    already = exists().where(d.c.case_id == c.c.id, d.c.user_id == actor.user_id)
    rows = session.scalars(
        select(c.c.item)
        .where(
            c.c.step_role.is_not(None),
            c.c.requester_id != actor.user_id,
            not_(already),
            may_decide,
        )
        .order_by(c.c.due_at, c.c.id)
        .limit(limit)
    ).all()
    return {"items": list(rows)}


def floats(session: Reader, actor: Actor, branch_id: str | None = None) -> list[dict[str, Any]]:
    """The floats the actor's scope covers (one branch's, when given), by account code."""
    a = rm_accounts
    query = select(a.c.float).where(a.c.kind == "float", scope_clause(a, actor)).order_by(a.c.code)
    if branch_id is not None:
        query = query.where(a.c.branch_id == branch_id)
    return list(session.scalars(query))


def trial_balance(session: Reader) -> dict[str, Any]:
    """Debits against credits per currency (the ledger's own totals, a consistent cut), every
    account's totals, and the last check of the cached balances against the transfers."""
    accounts = session.execute(
        select(rm_accounts.c.body, rm_accounts.c.float).order_by(rm_accounts.c.currency, rm_accounts.c.code)
    ).all()
    ledger = document(session, "ledger_totals") or {"totals": {}, "balanced": True}
    check = document(session, "ledger_check") or {"checked_at": None, "cache_mismatches": []}
    negative = [body["code"] for body, fl in accounts if fl is not None and fl["available"]["minor_units"] < 0]
    return {
        "balanced": ledger["balanced"] and not check["cache_mismatches"],
        "totals": ledger["totals"],
        "cache_mismatches": check["cache_mismatches"],
        "cache_checked_at": check["checked_at"],
        "negative_floats": negative,
        "accounts": [body for body, _ in accounts],
    }


def payment(session: Reader, actor: Actor, requisition_id: str) -> dict[str, Any] | None:
    """A requisition's payment, if there is one in the actor's scope."""
    p = rm_payments
    body: dict[str, Any] | None = session.scalar(
        select(p.c.body).where(p.c.requisition_id == requisition_id, scope_clause(p, actor))
    )
    return body


def alerts(
    session: Reader, actor: Actor, status: str = "unresolved", severity: str | None = None, limit: int = ALERTS_LIMIT
) -> dict[str, Any]:
    """Alerts in the actor's scope, last seen first (``status``: unresolved, open,
    acknowledged, resolved or all), and the unresolved ones counted by severity."""
    a = rm_alerts
    query = select(a.c.body).where(scope_clause(a, actor))
    if status == "unresolved":
        query = query.where(a.c.status != "resolved")
    elif status != "all":
        query = query.where(a.c.status == status)
    if severity is not None:
        query = query.where(a.c.severity == severity)
    rows = session.scalars(query.order_by(a.c.last_seen_at.desc(), a.c.id.desc()).limit(limit)).all()
    return {"items": list(rows), "counts": alert_counts(session, actor)}


def alert_counts(session: Reader, actor: Actor) -> dict[str, int]:
    """The unresolved alerts in scope, by severity (every severity named, zero or not)."""
    a = rm_alerts
    counted = session.execute(
        select(a.c.severity, func.count())
        .where(scope_clause(a, actor), a.c.status != "resolved")
        .group_by(a.c.severity)
    ).all()
    return {"info": 0, "warning": 0, "critical": 0, **{severity: int(n) for severity, n in counted}}


def replenishments(session: Reader, actor: Actor, status: str | None = None, limit: int = 100) -> list[Any]:
    """Replenishment requests of the floats the actor's scope covers, newest first."""
    r = rm_replenishments
    query = select(r.c.body).where(scope_clause(r, actor)).order_by(r.c.requested_at.desc(), r.c.id.desc())
    if status is not None:
        query = query.where(r.c.status == status)
    return list(session.scalars(query.limit(limit)))


def document(session: Reader, name: str) -> dict[str, Any] | None:
    """A document there is one of (the policy, the caps, the last ledger check)."""
    body: dict[str, Any] | None = session.scalar(select(rm_documents.c.body).where(rm_documents.c.id == name))
    return body


# -- the dashboard's reads (services.gateway.dashboard puts them together) -----------------

# The requisition states the dashboard counts (waiting for approval, for funds, for payment).
OPEN_STATES = (
    "pending_approval",
    "pending_urgency_confirmation",
    "awaiting_funds",
    "reserved",
    "payment_processing",
    "payment_failed",
)


def open_requisition_counts(session: Reader, actor: Actor, branch_id: str | None = None) -> list[tuple[str, str, int]]:
    """(branch id, state, how many) of the requisitions in an open state in scope."""
    r = rm_requisitions
    query = (
        select(r.c.branch_id, r.c.status, func.count())
        .where(r.c.status.in_(OPEN_STATES), scope_clause(r, actor))
        .group_by(r.c.branch_id, r.c.status)
    )
    if branch_id is not None:
        query = query.where(r.c.branch_id == branch_id)
    return [(b, s, int(n)) for b, s, n in session.execute(query)]


def float_days(session: Reader, actor: Actor, since: Any, branch_id: str | None = None) -> list[Any]:
    """The float days since ``since`` in scope: (branch, currency, day, funded, spent, by category)."""
    d = rm_float_days
    query = select(d.c.branch_id, d.c.currency, d.c.day, d.c.funded_minor, d.c.spent_minor, d.c.body).where(
        d.c.day >= since, scope_clause(d, actor)
    )
    if branch_id is not None:
        query = query.where(d.c.branch_id == branch_id)
    return list(session.execute(query))


def payments_since(session: Reader, actor: Actor, since: Any, branch_id: str | None = None) -> list[tuple[str, int]]:
    """(branch id, how many) of the payments completed since ``since`` in scope."""
    p = rm_payments
    query = (
        select(p.c.branch_id, func.count())
        .where(p.c.completed_at >= since, p.c.state == "completed", scope_clause(p, actor))
        .group_by(p.c.branch_id)
    )
    if branch_id is not None:
        query = query.where(p.c.branch_id == branch_id)
    return [(b, int(n)) for b, n in session.execute(query)]


def latest_payments(session: Reader, actor: Actor, limit: int = 10, branch_id: str | None = None) -> list[Any]:
    """The payments completed last, in scope."""
    p = rm_payments
    query = select(p.c.body).where(p.c.completed_at.is_not(None), scope_clause(p, actor))
    if branch_id is not None:
        query = query.where(p.c.branch_id == branch_id)
    return list(session.scalars(query.order_by(p.c.completed_at.desc()).limit(limit)))


def cash_counts(
    session: Reader, actor: Actor, branch_id: str | None = None, status: str | None = None, limit: int = 100
) -> list[Any]:
    """Cash counts of the floats in scope (one branch's, or of one status), newest first."""
    c = rm_cash_counts
    query = select(c.c.body).where(scope_clause(c, actor)).order_by(c.c.counted_at.desc(), c.c.id.desc())
    if branch_id is not None:
        query = query.where(c.c.branch_id == branch_id)
    if status is not None:
        query = query.where(c.c.status == status)
    return list(session.scalars(query.limit(limit)))
