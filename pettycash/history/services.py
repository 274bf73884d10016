"""The requisition, approval and payment services' tables of a generated history, by ``COPY``.

Each requisition leaves what its status implies in each service: its history and voucher
number, its approval case and steps, what payment knows of it and, once paid, its payment.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg

from pettycash.history.plan import CURRENCY, Req, copy_rows, origin_of, voucher_of
from services.approval.domain import DEFAULT_POLICY
from services.ledger import domain as ledger_domain
from services.payment.domain import payment_id_for

REQUISITION_COLUMNS = (
    "id",
    "voucher_no",
    "voucher_seq",
    "branch_id",
    "branch_code",
    "region_id",
    "origin",
    "requester_id",
    "requester_name",
    "amount_minor",
    "currency",
    "category",
    "purpose",
    "payee_name",
    "payee_method",
    "payee_account_ref",
    "urgent",
    "urgency_reason",
    "status",
    "revision",
    "changes_deadline",
    "submitted_at",
    "approval_case_id",
    "tier",
    "created_at",
    "updated_at",
)
HISTORY_COLUMNS = (
    "requisition_id",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "from_status",
    "to_status",
    "comment",
    "message_id",
)


def _history(req: Req, times: dict[str, datetime], rng: random.Random) -> Iterator[tuple[Any, ...]]:
    requester = (req.requester.user_id, req.requester.username)

    def entry(
        at: datetime, actor: tuple[str, str], action: str, before: str | None, after: str, comment: str = ""
    ) -> tuple[Any, ...]:
        return (req.id, at, *actor, action, before, after, comment, uuid.UUID(int=rng.getrandbits(128), version=4))

    yield entry(times["created"], requester, "created", None, "draft")
    if req.status == "draft":
        return
    yield entry(times["submitted"], requester, "submitted", "draft", "submitted")
    chain = " > ".join(req.chain)
    yield entry(
        times["routed"], requester, "routed", "submitted", "pending_approval", f"tier {req.tier}, chain {chain}"
    )
    if req.status == "cancelled":
        yield entry(times["cancelled"], requester, "cancelled", "pending_approval", "cancelled", "no longer needed")
        return
    for n, decider in enumerate(req.deciders, start=1):
        actor = (decider.user_id, decider.username)
        if req.status == "rejected":
            yield entry(times[f"step{n}"], actor, "rejected", "pending_approval", "rejected", "not within policy")
            return
        role = req.chain[n - 1]
        yield entry(times[f"step{n}"], actor, f"approved as {role} (step {n})", "pending_approval", "pending_approval")
    if req.status in ("reserved", "paid"):
        last = req.deciders[-1]
        at = times[f"step{len(req.deciders)}"]
        yield entry(at, (last.user_id, last.username), "approved", "pending_approval", "approved")
        yield entry(times["reserved"], ("system", "system"), "funds-reserved", "approved", "reserved")
    if req.status == "paid" and req.payer is not None:
        payer = (req.payer.user_id, req.payer.username)
        yield entry(times["payment"], payer, "payment-started", "reserved", "payment_processing", f"by {payer[1]}")
        yield entry(times["paid"], payer, "paid", "payment_processing", "paid", f"{req.payee[1]} ref SEEDED")


def load_requisition_service(conn: psycopg.Connection[Any], reqs: list[Req], rng: random.Random) -> dict[str, int]:
    """The requisition service's tables: requisitions, their history, the voucher counters."""
    rows: dict[str, int] = {}

    def requisition(req: Req) -> tuple[Any, ...]:
        times = req.times
        updated = max(times.values())
        submitted = None if req.status == "draft" else times["submitted"]
        return (
            req.id,
            voucher_of(req),
            req.seq,
            req.branch.id,
            req.branch.code,
            req.branch.region_id,
            origin_of(req),
            req.requester.user_id,
            req.requester.username,
            req.amount,
            CURRENCY,
            req.category,
            f"{req.category.replace('_', ' ')} for {req.branch.code}",
            *req.payee,
            False,
            "",
            req.status,
            0 if req.status == "draft" else 1,
            None,
            submitted,
            req.case_id,
            None if req.status == "draft" else req.tier,
            req.created_at,
            updated,
        )

    rows["requisitions"] = copy_rows(conn, "requisitions", REQUISITION_COLUMNS, map(requisition, reqs))
    history = (h for r in reqs for h in _history(r, r.times, rng))
    rows["requisition_history"] = copy_rows(conn, "requisition_history", HISTORY_COLUMNS, history)
    last: dict[str, tuple[str, int]] = {}
    for req in reqs:
        if req.seq is not None:
            last[req.branch.code] = (req.branch.id, max(req.seq, last.get(req.branch.code, ("", 0))[1]))
    rows["voucher_sequences"] = copy_rows(conn, "voucher_sequences", ("branch_id", "last_no"), last.values())
    return rows


# -- the approval service -------------------------------------------------------------

CASE_COLUMNS = (
    "id",
    "requisition_id",
    "voucher_no",
    "branch_id",
    "region_id",
    "origin",
    "requester_id",
    "requester_name",
    "amount_minor",
    "currency",
    "category",
    "urgent",
    "urgency_reason",
    "payee",
    "reused_receipts",
    "fast_track",
    "tier",
    "policy_version",
    "revision",
    "status",
    "opened_at",
    "closed_at",
)
STEP_COLUMNS = (
    "case_id",
    "revision",
    "seq",
    "role",
    "kind",
    "status",
    "admin_may_act",
    "escalation_reason",
    "activated_at",
    "due_at",
    "sla_escalated",
    "decided_by",
    "decided_by_name",
    "acted_as",
    "decision",
    "decided_at",
    "comment",
)
CASE_STATUS = {"pending_approval": "open", "rejected": "rejected", "cancelled": "cancelled"}


def _steps(req: Req, times: dict[str, datetime]) -> Iterator[tuple[Any, ...]]:
    sla = timedelta(hours=DEFAULT_POLICY.sla_hours)
    for n, role in enumerate(req.chain, start=1):
        decided = req.deciders[n - 1] if n <= len(req.deciders) else None
        activated = times["routed"] if n == 1 else times.get(f"step{n - 1}")
        if decided is not None:
            decision = "reject" if req.status == "rejected" else "approve"
            status, decider = "done", (decided.user_id, decided.username, role, decision, times[f"step{n}"])
        elif req.status == "pending_approval":
            status, decider = ("active" if n == 1 else "waiting"), (None, None, None, None, None)
            activated = times["routed"] if n == 1 else None
        else:  # the case closed (cancelled, rejected) before this step: it never ran
            status, decider, activated = "void", (None, None, None, None, None), None
        due = activated + sla if activated is not None else None
        yield (req.case_id, 1, n, role, "approve", status, False, "", activated, due, False, *decider, "")


def load_approval_service(conn: psycopg.Connection[Any], reqs: list[Req], rng: random.Random) -> dict[str, int]:
    """The approval service's cases and steps (the approvers' directory fills from the gateway's events)."""
    submitted = [r for r in reqs if r.case_id is not None]

    def case(req: Req) -> tuple[Any, ...]:
        times = req.times
        status = CASE_STATUS.get(req.status, "approved")
        closed = None
        if status == "approved":
            closed = times[f"step{len(req.deciders)}"]
        elif status == "rejected":
            closed = times["step1"]
        elif status == "cancelled":
            closed = times["cancelled"]
        payee = json.dumps({"name": req.payee[0], "method": req.payee[1], "account_ref": req.payee[2]})
        return (
            req.case_id,
            req.id,
            voucher_of(req),
            req.branch.id,
            req.branch.region_id,
            origin_of(req),
            req.requester.user_id,
            req.requester.username,
            req.amount,
            CURRENCY,
            req.category,
            False,
            "",
            payee,
            "[]",
            False,
            req.tier,
            DEFAULT_POLICY.version,
            1,
            status,
            times["routed"],
            closed,
        )

    rows = {"approval_cases": copy_rows(conn, "approval_cases", CASE_COLUMNS, map(case, submitted))}
    steps = (s for r in submitted for s in _steps(r, r.times))
    rows["approval_steps"] = copy_rows(conn, "approval_steps", STEP_COLUMNS, steps)
    return rows


# -- the payment service --------------------------------------------------------------

PAYABLE_COLUMNS = (
    "requisition_id",
    "voucher_no",
    "branch_id",
    "region_id",
    "requester_id",
    "approver_ids",
    "amount_minor",
    "currency",
    "payee_name",
    "payee_method",
    "payee_account_ref",
    "hold_transfer_id",
    "approved_at",
    "reserved_at",
)
PAYMENT_COLUMNS = (
    "id",
    "requisition_id",
    "branch_id",
    "region_id",
    "amount_minor",
    "currency",
    "payee_name",
    "payee_method",
    "payee_account_ref",
    "state",
    "executions",
    "attempts",
    "executor_id",
    "executor_name",
    "provider",
    "provider_reference",
    "redrives",
    "created_at",
    "updated_at",
    "completed_at",
)
EXECUTION_COLUMNS = (
    "payment_id",
    "number",
    "executor_id",
    "executor_name",
    "started_at",
    "finished_at",
    "outcome",
    "reason",
)


def load_payment_service(conn: psycopg.Connection[Any], reqs: list[Req], rng: random.Random) -> dict[str, int]:
    """What payment knows of approved requisitions, and the payments of the paid ones."""
    approved = [r for r in reqs if r.status in ("reserved", "paid")]
    paid = [r for r in approved if r.status == "paid" and r.payer is not None]

    def payable(req: Req) -> tuple[Any, ...]:
        times = req.times
        approvers = json.dumps(sorted({d.user_id for d in req.deciders}))
        approved_at = times[f"step{len(req.deciders)}"]
        hold = ledger_domain.transfer_id("hold", req.id)
        return (
            req.id,
            voucher_of(req),
            req.branch.id,
            req.branch.region_id,
            req.requester.user_id,
            approvers,
            req.amount,
            CURRENCY,
            *req.payee,
            hold,
            approved_at,
            times["reserved"],
        )

    def payment(req: Req) -> tuple[Any, ...]:
        times = req.times
        assert req.payer is not None
        return (
            payment_id_for(req.id),
            req.id,
            req.branch.id,
            req.branch.region_id,
            req.amount,
            CURRENCY,
            *req.payee,
            "completed",
            1,
            1,
            req.payer.user_id,
            req.payer.username,
            req.payee[1],
            f"SEED-{req.seq:06d}",
            0,
            times["payment"],
            times["paid"],
            times["paid"],
        )

    def execution(req: Req) -> tuple[Any, ...]:
        times = req.times
        assert req.payer is not None
        payer = req.payer
        return (
            payment_id_for(req.id),
            1,
            payer.user_id,
            payer.username,
            times["payment"],
            times["paid"],
            "completed",
            "",
        )

    rows = {"payable_requisitions": copy_rows(conn, "payable_requisitions", PAYABLE_COLUMNS, map(payable, approved))}
    rows["payments"] = copy_rows(conn, "payments", PAYMENT_COLUMNS, map(payment, paid))
    rows["payment_executions"] = copy_rows(conn, "payment_executions", EXECUTION_COLUMNS, map(execution, paid))
    return rows
