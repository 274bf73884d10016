"""Requisition use cases; each runs inside the unit of work its task adapter opened."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.requisition import domain
from services.requisition.domain import Status
from services.requisition.models import HistoryEntry, Requisition, VoucherSequence
from services.requisition.schemas import requisition_body
from shared.contracts.catalog import REQUISITION_SUBMITTED
from shared.contracts.envelope import Envelope
from shared.contracts.roles import can_see_branch, is_member
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import Conflict, Forbidden, NotFound, ok_reply


def _next_voucher_seq(session: Session, branch_id: str) -> int:
    """Bump the branch's counter in this transaction: a rollback returns the number (gap-free)."""
    dialect_insert = postgresql.insert if session.bind and session.bind.dialect.name == "postgresql" else sqlite.insert
    session.execute(dialect_insert(VoucherSequence).values(branch_id=branch_id, last_no=0).on_conflict_do_nothing())
    seq = session.execute(
        update(VoucherSequence)
        .where(VoucherSequence.branch_id == branch_id)
        .values(last_no=VoucherSequence.last_no + 1)
        .returning(VoucherSequence.last_no)
    ).scalar_one()
    return int(seq)


def _record(
    session: Session, req: Requisition, envelope: Envelope, action: str, *, before: str | None, comment: str = ""
) -> None:
    session.add(
        HistoryEntry(
            requisition_id=req.id,
            at=utcnow(),
            actor_id=envelope.actor["user_id"],
            actor_name=envelope.actor["username"],
            action=action,
            from_status=before,
            to_status=req.status,
            comment=comment,
            message_id=uuid.UUID(envelope.message_id),
        )
    )


def submit_requisition(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Store a submitted requisition with its voucher number and announce it."""
    actor = envelope.actor
    if not is_member(actor, payload["branch_id"]):
        raise Forbidden("You can only request money for a branch you belong to.", code="not-a-branch-member")
    session = uow.session
    now = utcnow()
    seq = _next_voucher_seq(session, payload["branch_id"])
    money = payload["amount"]
    payee = payload["payee"]
    req = Requisition(
        id=uuid.uuid4(),
        voucher_no=domain.voucher_number(payload["branch_code"], seq),
        voucher_seq=seq,
        branch_id=payload["branch_id"],
        branch_code=payload["branch_code"],
        region_id=payload["region_id"],
        origin=payload["origin"],
        requester_id=actor["user_id"],
        requester_name=actor["username"],
        amount_minor=money.minor_units,
        currency=money.currency,
        category=payload["category"],
        purpose=payload["purpose"],
        payee_name=payee["name"],
        payee_method=payee["method"],
        payee_account_ref=payee.get("account_ref", ""),
        urgent=payload["urgent"],
        urgency_reason=payload["urgency_reason"],
        status=Status.SUBMITTED,
        created_at=now,
        updated_at=now,
    )
    session.add(req)
    session.flush()
    _record(
        session, req, envelope, "submitted", before=None, comment=payload["urgency_reason"] if payload["urgent"] else ""
    )
    uow.emit(
        envelope.caused(
            REQUISITION_SUBMITTED.name,
            {
                "requisition_id": str(req.id),
                "voucher_no": req.voucher_no,
                "branch_id": req.branch_id,
                "region_id": req.region_id,
                "origin": req.origin,
                "requester_id": req.requester_id,
                "amount": money.to_dict(),
                "category": req.category,
                "urgent": req.urgent,
            },
        )
    )
    return ok_reply(201, requisition_body(req))


def _load_visible(session: Session, requisition_id: uuid.UUID, actor: dict[str, Any]) -> Requisition:
    req = session.get(Requisition, requisition_id)
    # Out of scope looks exactly like absent: no probing for other branches' ids.
    if req is None or not can_see_branch(actor, req.branch_id, req.region_id):
        raise NotFound("No such requisition.")
    return req


def get_requisition(session: Session, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """One requisition with its history, if the actor's scope covers its branch."""
    req = _load_visible(session, payload["id"], envelope.actor)
    history = list(
        session.scalars(select(HistoryEntry).where(HistoryEntry.requisition_id == req.id).order_by(HistoryEntry.id))
    )
    return ok_reply(200, requisition_body(req, history))


def on_approval_case_opened(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """The approval service routed the requisition: it now waits for approvers."""
    req = uow.session.get(Requisition, payload["requisition_id"], with_for_update=True)
    if req is None:
        raise Conflict(f"requisition {payload['requisition_id']} is unknown here")
    before = req.status
    try:
        req.status = domain.transition(req.status, Status.PENDING_APPROVAL)
    except domain.InvalidTransition:
        return  # already moved on (cancelled meanwhile): the event changes nothing
    req.approval_case_id = payload["case_id"]
    req.tier = payload["tier"]
    req.updated_at = utcnow()
    _record(uow.session, req, envelope, "routed", before=before, comment=f"tier {payload['tier']}")
