"""Approval use cases; each runs inside the unit of work its task adapter opened."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.approval import domain
from services.approval.models import ApprovalCase
from services.approval.schemas import case_body
from shared.contracts.catalog import APPROVAL_CASE_OPENED
from shared.contracts.envelope import Envelope
from shared.contracts.roles import can_see_branch
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import NotFound, ok_reply


def open_case(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Route a submitted requisition to its tier and announce the open case."""
    existing = uow.session.scalar(select(ApprovalCase).where(ApprovalCase.requisition_id == payload["requisition_id"]))
    if existing is not None:
        return  # a second RequisitionSubmitted for the same requisition opens nothing
    amount = payload["amount"]
    tier = domain.tier_for(payload["origin"], amount)
    case = ApprovalCase(
        id=uuid.uuid4(),
        requisition_id=payload["requisition_id"],
        voucher_no=payload["voucher_no"],
        branch_id=payload["branch_id"],
        region_id=payload["region_id"],
        origin=payload["origin"],
        requester_id=payload["requester_id"],
        amount_minor=amount.minor_units,
        currency=amount.currency,
        category=payload["category"],
        urgent=payload["urgent"],
        tier=tier.name,
        policy_version=domain.DEFAULT_POLICY_VERSION,
        status="open",
        opened_at=utcnow(),
    )
    uow.session.add(case)
    uow.emit(
        envelope.caused(
            APPROVAL_CASE_OPENED.name,
            {
                "requisition_id": str(case.requisition_id),
                "case_id": str(case.id),
                "tier": case.tier,
                "policy_version": case.policy_version,
            },
        )
    )


def get_approval_case(session: Session, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """The approval case of a requisition (by requisition id), within the actor's scope."""
    case = session.scalar(select(ApprovalCase).where(ApprovalCase.requisition_id == payload["id"]))
    if case is None or not can_see_branch(envelope.actor, case.branch_id, case.region_id):
        raise NotFound("No approval case for this requisition.")
    return ok_reply(200, case_body(case))
