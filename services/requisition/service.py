"""Requisition use cases; each runs inside the unit of work its task adapter opened."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.requisition import domain
from services.requisition.domain import Status
from services.requisition.models import Cap, HistoryEntry, Receipt, Requisition, VoucherSequence
from services.requisition.schemas import cap_body, receipt_body, requisition_body
from shared.contracts import catalog
from shared.contracts.envelope import Actor, Envelope
from shared.contracts.money import Money
from shared.contracts.permissions import Action, may
from shared.contracts.roles import can_see_branch, is_member
from shared.db import upsert
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import Conflict, DomainError, Forbidden, NotFound, ok_reply
from shared.messaging.runtime import RetryLater
from shared.messaging.snapshots import touch

# -- helpers --------------------------------------------------------------------------


def _next_voucher_seq(session: Session, branch_id: str) -> int:
    """Bump the branch's counter in this transaction: a rollback returns the number (gap-free).

    The row lock it takes also serialises submissions per branch, which the monthly cap needs.
    """
    session.execute(
        upsert.insert(session, VoucherSequence).values(branch_id=branch_id, last_no=0).on_conflict_do_nothing()
    )
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
            actor_id=envelope.actor.user_id,
            actor_name=envelope.actor.username,
            action=action,
            from_status=before,
            to_status=req.status,
            comment=comment,
            message_id=uuid.UUID(envelope.message_id),
        )
    )


def _move(
    session: Session, req: Requisition, target: Status, envelope: Envelope, action: str, comment: str = ""
) -> None:
    """Apply a transition the machine allows (409 with the reason otherwise) and record it."""
    before = req.status
    try:
        req.status = domain.transition(req.status, target)
    except domain.InvalidTransition as exc:
        raise Conflict(str(exc), code="invalid-transition", current=before, target=str(target)) from exc
    req.updated_at = utcnow()
    _record(session, req, envelope, action, before=before, comment=comment)


def _follow(
    uow: UnitOfWork, requisition_id: Any, target: Status, envelope: Envelope, action: str, comment: str = ""
) -> Requisition | None:
    """Apply the status an event from another service implies.

    Events from different services race: one that needs an earlier event first is retried
    shortly; one that comes after the requisition moved on (cancelled meanwhile) changes
    nothing but the history.
    """
    req = uow.session.get(Requisition, requisition_id, with_for_update=True)
    if req is None:
        raise RetryLater(0.2, f"requisition {requisition_id} not visible yet")
    if target in domain.TRANSITIONS[Status(req.status)]:
        _move(uow.session, req, target, envelope, action, comment)
        return req
    if domain.arrived_early(req.status, target):
        raise RetryLater(0.2, f"{envelope.type} for a requisition still {req.status}")
    _record(uow.session, req, envelope, f"{action} (ignored: {req.status})", before=req.status, comment=comment)
    return None


def _own(session: Session, requisition_id: Any, actor: Actor) -> Requisition:
    req = session.get(Requisition, requisition_id, with_for_update=True)
    if req is None or (not can_see_branch(actor, req.branch_id, req.region_id) and req.requester_id != actor.user_id):
        raise NotFound("No such requisition.")
    return req


def _require_requester(req: Requisition, actor: Actor, what: str) -> None:
    if req.requester_id != actor.user_id:
        raise Forbidden(f"Only the requester may {what} a requisition.", code="requester-only")


def _apply_fields(req: Requisition, payload: dict[str, Any]) -> None:
    money: Money = payload["amount"]
    payee = payload["payee"]
    req.amount_minor = money.minor_units
    req.currency = money.currency
    req.category = payload["category"]
    req.purpose = payload["purpose"]
    req.payee_name = payee["name"]
    req.payee_method = payee["method"]
    req.payee_account_ref = payee.get("account_ref", "")
    req.urgent = payload["urgent"]
    req.urgency_reason = payload["urgency_reason"] if payload["urgent"] else ""


def _caps(session: Session) -> list[domain.CapRule]:
    return [
        domain.CapRule(c.kind, c.category, c.branch_id, Money(c.currency, c.limit_minor))
        for c in session.scalars(select(Cap).order_by(Cap.id))
    ]


def _month_total(session: Session, req: Requisition, now: datetime) -> int:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    total = session.scalar(
        select(func.coalesce(func.sum(Requisition.amount_minor), 0)).where(
            Requisition.branch_id == req.branch_id,
            Requisition.currency == req.currency,
            Requisition.submitted_at >= start,
            Requisition.id != req.id,
            Requisition.status.not_in([str(s) for s in domain.NOT_COMMITTED]),
        )
    )
    return int(total or 0)


def _reused_in(session: Session, req: Requisition, sha256: str) -> list[str]:
    """Voucher numbers (or ids, for drafts) of other requisitions that carry the same file."""
    rows = session.execute(
        select(Requisition.voucher_no, Requisition.id)
        .join(Receipt, Receipt.requisition_id == Requisition.id)
        .where(Receipt.sha256 == sha256, Requisition.id != req.id)
    ).all()
    return sorted(v or str(i) for v, i in rows)


def _reused_receipts(session: Session, req: Requisition) -> list[str]:
    """Vouchers of other requisitions that carry any of this one's receipt files."""
    receipts = session.scalars(select(Receipt).where(Receipt.requisition_id == req.id))
    return sorted({v for r in receipts for v in _reused_in(session, req, r.sha256)})


def _touch_sharers(session: Session, req: Requisition, shas: Any) -> None:
    """The other requisitions holding a receipt of these hashes: what their reuse flags say of
    ``req`` changed (``shas``: a list, or a subquery)."""
    for other in session.scalars(
        select(Receipt.requisition_id).where(Receipt.sha256.in_(shas), Receipt.requisition_id != req.id)
    ):
        touch(session, "requisition", other)


def _submit(uow: UnitOfWork, req: Requisition, envelope: Envelope, action: str, *, fresh: bool = False) -> None:
    """Number it, check the caps, and hand it to the approval service."""
    session = uow.session
    now = utcnow()
    if req.voucher_no is None:
        req.voucher_seq = _next_voucher_seq(session, req.branch_id)
        req.voucher_no = domain.voucher_number(req.branch_code, req.voucher_seq)
        if not fresh:  # those sharing a receipt with it name it by its voucher now
            _touch_sharers(session, req, select(Receipt.sha256).where(Receipt.requisition_id == req.id))
    else:  # a resubmission keeps its number; it still takes the branch lock for the cap check
        session.execute(select(VoucherSequence).where(VoucherSequence.branch_id == req.branch_id).with_for_update())
    amount = Money(req.currency, req.amount_minor)
    caps = _caps(session)
    if caps:
        broken = domain.broken_cap(caps, req.branch_id, req.category, amount, _month_total(session, req, now))
        if broken:
            raise DomainError(broken, code="cap-exceeded")
    req.revision += 1
    req.submitted_at = now
    req.changes_deadline = None
    _move(session, req, Status.SUBMITTED, envelope, action, req.urgency_reason if req.urgent else "")
    # A requisition created and submitted in this transaction has no receipts yet.
    reused = [] if fresh else _reused_receipts(session, req)
    uow.emit(
        envelope.caused(
            catalog.REQUISITION_SUBMITTED.name,
            {
                "requisition_id": str(req.id),
                "voucher_no": req.voucher_no,
                "branch_id": req.branch_id,
                "region_id": req.region_id,
                "origin": req.origin,
                "requester_id": req.requester_id,
                "requester_name": req.requester_name,
                "amount": amount.to_dict(),
                "category": req.category,
                "urgent": req.urgent,
                "urgency_reason": req.urgency_reason,
                "payee": {"name": req.payee_name, "method": req.payee_method, "account_ref": req.payee_account_ref},
                "reused_receipts": reused,
                "revision": req.revision,
            },
        )
    )


# -- commands -------------------------------------------------------------------------


def submit_requisition(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Create a requisition and submit it (or keep it as a draft when ``draft`` is set)."""
    actor = envelope.actor
    if not is_member(actor, payload["branch_id"]):
        raise Forbidden("You can only request money for a branch you belong to.", code="not-a-branch-member")
    session = uow.session
    now = utcnow()
    req = Requisition(
        id=uuid.uuid4(),
        branch_id=payload["branch_id"],
        branch_code=payload["branch_code"],
        region_id=payload["region_id"],
        origin=payload["origin"],
        requester_id=actor.user_id,
        requester_name=actor.username,
        status=Status.DRAFT,
        revision=0,
        created_at=now,
        updated_at=now,
    )
    _apply_fields(req, payload)
    session.add(req)
    session.flush()
    _record(session, req, envelope, "created", before=None)
    if not payload.get("draft"):
        _submit(uow, req, envelope, "submitted", fresh=True)
    return ok_reply(201, requisition_body(req))


def update_requisition(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Edit a draft, or a requisition sent back for changes (requester only)."""
    req = _own(uow.session, payload["id"], envelope.actor)
    _require_requester(req, envelope.actor, "edit")
    if Status(req.status) not in domain.EDITABLE:
        raise Conflict(f"A requisition that is {req.status} cannot be edited.", code="not-editable", current=req.status)
    _apply_fields(req, payload)
    req.updated_at = utcnow()
    _record(uow.session, req, envelope, "edited", before=req.status)
    return ok_reply(200, requisition_body(req))


def submit_draft(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Submit a draft, or resubmit after changes were requested (requester only)."""
    req = _own(uow.session, payload["id"], envelope.actor)
    _require_requester(req, envelope.actor, "submit")
    if Status(req.status) not in domain.SUBMITTABLE:
        raise Conflict(
            f"A requisition that is {req.status} cannot be submitted.", code="invalid-transition", current=req.status
        )
    if req.changes_deadline is not None and req.changes_deadline < utcnow():
        raise Conflict("The deadline for changes has passed.", code="changes-deadline-passed")
    _submit(uow, req, envelope, "resubmitted" if req.revision else "submitted")
    return ok_reply(200, requisition_body(req))


def cancel_requisition(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Withdraw before a decision (requester), or cancel before payment (finance, CFO, admin)."""
    actor = envelope.actor
    req = _own(uow.session, payload["id"], actor)
    status = Status(req.status)
    refusal = domain.cancel_refusal(
        status, own=req.requester_id == actor.user_id, office=may(actor, Action.CANCEL_ANY_REQUISITION)
    )
    if refusal == domain.CancelRefusal.NOT_YOURS:
        raise Forbidden("Only the requester, finance or an admin may cancel.", code="cannot-cancel")
    if refusal == domain.CancelRefusal.TOO_LATE:
        raise Conflict(
            f"A requisition that is {req.status} cannot be cancelled.", code="invalid-transition", current=req.status
        )
    _move(uow.session, req, Status.CANCELLED, envelope, "cancelled", payload["comment"])
    uow.emit(
        envelope.caused(
            catalog.REQUISITION_CANCELLED.name,
            {
                "requisition_id": str(req.id),
                "branch_id": req.branch_id,
                "actor_id": actor.user_id,
                "reason": payload["comment"],
            },
        )
    )
    return ok_reply(200, requisition_body(req))


def attach_receipt(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Attach a stored receipt; a file already used on another requisition is flagged."""
    session = uow.session
    req = _own(session, payload["id"], envelope.actor)
    _require_requester(req, envelope.actor, "attach receipts to")
    if Status(req.status) not in domain.RECEIPTS_ALLOWED:
        raise Conflict(f"Receipts cannot be added to a requisition that is {req.status}.", code="receipts-closed")
    duplicate = session.scalar(
        select(Receipt).where(Receipt.requisition_id == req.id, Receipt.sha256 == payload["sha256"])
    )
    if duplicate is not None:
        raise Conflict("This file is already attached to this requisition.", code="receipt-already-attached")
    receipt = Receipt(
        requisition_id=req.id,
        sha256=payload["sha256"],
        filename=payload["filename"],
        content_type=payload["content_type"],
        size=payload["size"],
        uploaded_by=envelope.actor.user_id,
        uploaded_at=utcnow(),
    )
    session.add(receipt)
    session.flush()
    reused_in = _reused_in(session, req, receipt.sha256)
    _touch_sharers(session, req, [receipt.sha256])  # their receipts are flagged as reused now
    _record(session, req, envelope, "receipt-attached", before=req.status, comment=receipt.filename)
    if req.status != Status.DRAFT:
        uow.emit(
            envelope.caused(
                catalog.RECEIPT_ATTACHED.name,
                {"requisition_id": str(req.id), "sha256": receipt.sha256, "reused_in": reused_in},
            )
        )
    return ok_reply(201, receipt_body(receipt, reused_in))


def set_caps(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Replace the caps (admin only)."""
    if not may(envelope.actor, Action.SET_CAPS):
        raise Forbidden("Only an admin may set caps.", code="admin-only")
    session = uow.session
    for cap in session.scalars(select(Cap)):
        session.delete(cap)
    for raw in payload["caps"]:
        if raw["kind"] == "category_per_requisition" and not raw.get("category"):
            raise DomainError("A category cap names its category.", code="invalid-cap")
        limit: Money = raw["limit"]
        session.add(
            Cap(
                kind=raw["kind"],
                category=raw.get("category"),
                branch_id=raw.get("branch_id"),
                currency=limit.currency,
                limit_minor=limit.minor_units,
            )
        )
    session.flush()
    return ok_reply(200, {"caps": [cap_body(c) for c in session.scalars(select(Cap).order_by(Cap.id))]})


def expire_requisitions(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Requisitions sent back for changes and not resubmitted by their deadline expire."""
    now = payload["as_of"] or utcnow()
    overdue = uow.session.scalars(
        select(Requisition)
        .where(Requisition.status == Status.CHANGES_REQUESTED, Requisition.changes_deadline < now)
        .with_for_update(skip_locked=True)
    ).all()
    for req in overdue:
        _move(uow.session, req, Status.EXPIRED, envelope, "expired", "the deadline for changes passed")
        uow.emit(
            envelope.caused(
                catalog.REQUISITION_EXPIRED.name,
                {
                    "requisition_id": str(req.id),
                    "branch_id": req.branch_id,
                    "actor_id": "system",
                    "reason": "deadline passed",
                },
            )
        )
    return {"expired": len(overdue)}


# -- read models (shared.messaging.snapshots) ------------------------------------------


def requisition_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Requisitions as the gateway projects them: scope columns and the full body (history,
    receipts with their reuse flags); a few queries for the whole batch."""
    reqs = session.scalars(select(Requisition).where(Requisition.id.in_(ids))).all()
    history: dict[uuid.UUID, list[HistoryEntry]] = {}
    for entry in session.scalars(
        select(HistoryEntry).where(HistoryEntry.requisition_id.in_(ids)).order_by(HistoryEntry.id)
    ):
        history.setdefault(entry.requisition_id, []).append(entry)
    receipts: dict[uuid.UUID, list[Receipt]] = {}
    for receipt in session.scalars(select(Receipt).where(Receipt.requisition_id.in_(ids)).order_by(Receipt.id)):
        receipts.setdefault(receipt.requisition_id, []).append(receipt)
    carriers: dict[str, list[tuple[uuid.UUID, str]]] = {}
    shas = {r.sha256 for rs in receipts.values() for r in rs}
    if shas:
        for sha, req_id, voucher in session.execute(
            select(Receipt.sha256, Requisition.id, Requisition.voucher_no)
            .join(Requisition, Receipt.requisition_id == Requisition.id)
            .where(Receipt.sha256.in_(shas))
        ):
            carriers.setdefault(sha, []).append((req_id, voucher or str(req_id)))

    def reused_in(req: Requisition, sha: str) -> list[str]:
        return sorted(label for other, label in carriers.get(sha, []) if other != req.id)

    return [
        {
            "id": str(req.id),
            "branch_id": req.branch_id,
            "region_id": req.region_id,
            "requester_id": req.requester_id,
            "status": req.status,
            "created_at": req.created_at.isoformat(),
            "body": requisition_body(
                req,
                history.get(req.id, []),
                [receipt_body(r, reused_in(req, r.sha256)) for r in receipts.get(req.id, [])],
            ),
        }
        for req in reqs
    ]


def caps_snapshot(session: Session, _ids: Sequence[Any]) -> list[dict[str, Any]]:
    """The caps in force, as one document."""
    return [{"id": "caps", "body": {"caps": [cap_body(c) for c in session.scalars(select(Cap).order_by(Cap.id))]}}]


# -- events from the other services ---------------------------------------------------


def on_approval_case_opened(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Routed: it waits for its approvers (or for the final approver's urgency confirmation)."""
    target = Status.PENDING_URGENCY_CONFIRMATION if payload["fast_track"] else Status.PENDING_APPROVAL
    comment = f"tier {payload['tier']}, chain {' > '.join(payload['chain'])}"
    if payload["escalations"]:
        comment += "; " + "; ".join(payload["escalations"])
    req = _follow(uow, payload["requisition_id"], target, envelope, "routed", comment)
    if req is not None:
        req.approval_case_id = payload["case_id"]
        req.tier = payload["tier"]


def on_step_completed(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """History only: who approved which step, when, with what comment."""
    req = uow.session.get(Requisition, payload["requisition_id"], with_for_update=True)
    if req is None:
        raise RetryLater(0.2, "requisition not visible yet")
    action = f"{payload['decision']} as {payload['role']} (step {payload['step']})"
    _record(uow.session, req, envelope, action, before=req.status, comment=payload["comment"])


def on_approved(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    _follow(uow, payload["requisition_id"], Status.APPROVED, envelope, "approved", payload["comment"])


def on_rejected(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    _follow(uow, payload["requisition_id"], Status.REJECTED, envelope, "rejected", payload["comment"])


def on_changes_requested(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    req = _follow(
        uow, payload["requisition_id"], Status.CHANGES_REQUESTED, envelope, "changes-requested", payload["comment"]
    )
    if req is not None:
        req.changes_deadline = payload["deadline"]


def on_urgency_reverted(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    comment = f"{payload['comment']} (chain {' > '.join(payload['chain'])})".strip()
    _follow(uow, payload["requisition_id"], Status.PENDING_APPROVAL, envelope, "urgency-reverted", comment)


def on_escalated(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    req = uow.session.get(Requisition, payload["requisition_id"], with_for_update=True)
    if req is None:
        raise RetryLater(0.2, "requisition not visible yet")
    _record(
        uow.session,
        req,
        envelope,
        f"escalated to {payload['escalated_to']}",
        before=req.status,
        comment=payload["reason"],
    )


def on_funds_reserved(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    _follow(uow, payload["requisition_id"], Status.RESERVED, envelope, "funds-reserved")


def on_funds_awaited(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    _follow(uow, payload["requisition_id"], Status.AWAITING_FUNDS, envelope, "awaiting-funds")


def on_payment_started(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    _follow(
        uow,
        payload["requisition_id"],
        Status.PAYMENT_PROCESSING,
        envelope,
        "payment-started",
        f"by {payload['executor_name']}",
    )


def on_payment_completed(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    _follow(
        uow,
        payload["requisition_id"],
        Status.PAID,
        envelope,
        "paid",
        f"{payload['provider']} ref {payload['provider_reference']}",
    )


def on_payment_failed(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    left = payload["executions_left"]
    _follow(
        uow,
        payload["requisition_id"],
        Status.PAYMENT_FAILED,
        envelope,
        "payment-failed",
        f"{payload['reason']} ({left} execution(s) left)",
    )
