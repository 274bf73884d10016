"""Payment runs' reads: the ready payments a run may take, and each run with its progress.

A run's own projection says what was selected and which execution of each payment it
started; how far each got is that execution's outcome in the payment's projection, read
beside it, so a run's progress is as fresh as its payments' (no copy kept on the side).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from services.gateway.readmodels import (
    rm_approval_cases,
    rm_case_deciders,
    rm_payment_runs,
    rm_payments,
    rm_requisitions,
    summary_of,
)
from services.gateway.reads import Reader, scope_clause
from shared.contracts.envelope import Actor

# Ready to pay: reserved, or failed with an execution left (a later run may retry it).
READY_STATES = ("reserved", "payment_failed")
MAX_ITEMS = 200
RUNS_LIMIT = 50


@dataclass(frozen=True)
class Filter:
    """What treasury narrows the ready payments to: a branch, a payee method, an amount range."""

    branch_id: str | None = None
    method: str | None = None
    min_minor: int | None = None
    max_minor: int | None = None

    def keeps(self, summary: dict[str, Any]) -> bool:
        amount = int(summary["amount"]["minor_units"])
        return (
            (self.method is None or summary["payee"]["method"] == self.method)
            and (self.min_minor is None or amount >= self.min_minor)
            and (self.max_minor is None or amount <= self.max_minor)
        )


def candidates(session: Reader, actor: Actor, wanted: Filter) -> dict[str, Any]:
    """The requisitions ready to pay that the filter keeps, oldest first, with their count and
    totals; those this actor requested or approved are left out (someone else pays them)."""
    r, p, c, d = rm_requisitions, rm_payments, rm_approval_cases, rm_case_deciders
    decided = select(d.c.user_id).where(d.c.case_id == c.c.id, d.c.user_id == actor.user_id).exists()
    query = (
        select(r.c.summary, r.c.body, p.c.body.label("payment"), decided.label("decided"))
        .outerjoin(p, p.c.requisition_id == r.c.id)
        .outerjoin(c, c.c.requisition_id == r.c.id)
        .where(r.c.status.in_(READY_STATES), scope_clause(r, actor), r.c.requester_id != actor.user_id)
        .order_by(r.c.created_at, r.c.id)
    )
    if wanted.branch_id:
        query = query.where(r.c.branch_id == wanted.branch_id)
    items: list[dict[str, Any]] = []
    for row in session.execute(query):
        summary = row.summary or summary_of(row.body)
        if row.decided or not _retryable(row.payment) or not wanted.keeps(summary):
            continue
        items.append({**summary, "executions_left": _executions_left(row.payment)})
        if len(items) == MAX_ITEMS:
            break
    return {"items": items, "count": len(items), "totals": totals(items)}


def _retryable(payment: dict[str, Any] | None) -> bool:
    return payment is None or int(payment.get("executions_left", 1)) > 0


def _executions_left(payment: dict[str, Any] | None) -> int | None:
    return None if payment is None else int(payment.get("executions_left", 0))


def totals(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items' amounts summed per currency (integer minor units), by currency code."""
    by_currency: dict[str, int] = {}
    for item in items:
        amount = item["amount"]
        by_currency[amount["currency"]] = by_currency.get(amount["currency"], 0) + int(amount["minor_units"])
    return [{"minor_units": minor, "currency": currency} for currency, minor in sorted(by_currency.items())]


def runs(session: Reader, limit: int = RUNS_LIMIT) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with its progress."""
    bodies = list(
        session.scalars(
            select(rm_payment_runs.c.body)
            .order_by(rm_payment_runs.c.created_at.desc(), rm_payment_runs.c.id.desc())
            .limit(limit)
        )
    )
    outcomes = _outcomes(session, bodies)
    return [with_progress(body, outcomes) for body in bodies]


def run(session: Reader, run_id: str) -> dict[str, Any] | None:
    """One run with each item's outcome and the run's progress, or None."""
    body: dict[str, Any] | None = session.scalar(select(rm_payment_runs.c.body).where(rm_payment_runs.c.id == run_id))
    if body is None:
        return None
    return with_progress(body, _outcomes(session, [body]))


def _outcomes(session: Reader, bodies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The payments of these runs' included items, by payment id (their projected bodies)."""
    ids = sorted({item["payment_id"] for body in bodies for item in body["items"] if item["execution"]})
    if not ids:
        return {}
    p = rm_payments
    return {str(row.id): row.body for row in session.execute(select(p.c.id, p.c.body).where(p.c.id.in_(ids)))}


def with_progress(body: dict[str, Any], payments: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run with each item's outcome (its execution's, in the payment's projection) and the
    counts of items waiting, processing, paid, failed and left out; ``finished`` once it started
    and none is waiting for its execution to start or processing."""
    items = [{**item, **_outcome(item, payments.get(item["payment_id"]))} for item in body["items"]]
    counts = {"processing": 0, "paid": 0, "failed": 0, "left_out": 0, "waiting": 0}
    for item in items:
        counts[item["outcome"]] += 1
    started = body["state"] == "started"
    finished = started and not counts["processing"] and not counts["waiting"]
    return {**body, "items": items, "progress": counts, "finished": finished}


def _outcome(item: dict[str, Any], payment: dict[str, Any] | None) -> dict[str, Any]:
    if not item["included"]:
        return {"outcome": "left_out", "reason": item["left_out"]["detail"], "provider_reference": None}
    if item["execution"] is None:
        return {"outcome": "waiting", "reason": "", "provider_reference": None}
    execution = next((e for e in (payment or {}).get("history", []) if e["number"] == item["execution"]), None)
    outcome = {"completed": "paid", "failed": "failed"}.get(execution["outcome"] if execution else "", "processing")
    reference = (payment or {}).get("provider_reference") if outcome == "paid" else None
    return {"outcome": outcome, "reason": execution["reason"] if execution else "", "provider_reference": reference}
