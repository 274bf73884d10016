"""Cash counts: the custodian of a branch (or treasury) counts the float's till by
denomination; the ledger compares it with the book balance at that moment. No difference:
balanced. A difference is a variance that finance approves (the CFO above
:data:`CFO_LIMIT_MINOR`), which posts it to the branch's over/short account (a shortage
takes it from the float, an overage adds it), or rejects, which posts nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.ledger import domain
from services.ledger.levels import totals_of, watching_floats
from services.ledger.models import CashCount
from services.ledger.service import _account, _float, _require, _transfer
from shared.contracts.envelope import Envelope
from shared.contracts.money import CURRENCY_EXPONENTS, Money
from shared.contracts.permissions import Action
from shared.contracts.roles import Role, is_member
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import Conflict, DomainError, Forbidden, NotFound, ok_reply

# Above this variance (in minor units: 5,000.00 of a two-decimal currency) only the CFO decides it.
CFO_LIMIT_MINOR = 500_000


def counted_minor(denominations: dict[str, int], currency: str) -> int:
    """What the notes and coins add up to, in minor units (refused: a denomination finer than
    the currency's minor unit)."""
    exponent = CURRENCY_EXPONENTS[currency]
    total = 0
    for denomination, how_many in denominations.items():
        unit = Decimal(denomination).scaleb(exponent)
        if unit != unit.to_integral_value() or unit <= 0:
            raise DomainError(f"{denomination} is no {currency} denomination.", code="invalid-denomination")
        total += int(unit) * how_many
    return total


def record_cash_count(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Count the till against the book balance now (the float's row locked while it is read)."""
    actor = envelope.actor
    _require(actor, Action.RECORD_CASH_COUNT, "count a float's cash")
    if Role.TREASURY not in actor.roles and not is_member(actor, payload["branch_id"]):
        raise Forbidden("Only the branch's own custodian (or treasury) counts its cash.", code="not-a-member")
    session = uow.session
    float_account = _float(session, payload["branch_id"], payload["currency"])
    if float_account is None:
        raise NotFound("This branch has no float in that currency.", code="no-float")
    session.refresh(float_account, with_for_update=True)
    counted = counted_minor(payload["denominations"], payload["currency"])
    book = totals_of(float_account).balance
    count = CashCount(
        id=uuid.uuid4(),
        branch_id=payload["branch_id"],
        region_id=float_account.region_id or "",
        currency=payload["currency"],
        denominations=dict(payload["denominations"]),
        counted_minor=counted,
        book_minor=book,
        variance_minor=counted - book,
        counted_by=actor.user_id,
        counted_by_name=actor.username,
        counted_at=utcnow(),
        comment=payload["comment"],
        status="balanced" if counted == book else "pending",
        decision_comment="",
    )
    session.add(count)
    session.flush()
    return ok_reply(201, cash_count_body(count))


@watching_floats
def decide_variance(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Approve (post the variance to over/short) or reject a count's variance."""
    actor = envelope.actor
    _require(actor, Action.DECIDE_VARIANCE, "decide a cash variance")
    session = uow.session
    count = session.get(CashCount, payload["id"], with_for_update=True)
    if count is None:
        raise NotFound("No such cash count.")
    if count.counted_by == actor.user_id:
        raise Forbidden("Nobody decides the variance of their own count.", code="segregation-of-duties")
    if count.status != "pending":
        raise Conflict(f"This count is {count.status}: there is nothing to decide.", code="already-decided")
    if abs(count.variance_minor) > CFO_LIMIT_MINOR and Role.CFO not in actor.roles:
        limit = Money(count.currency, CFO_LIMIT_MINOR)
        raise Forbidden(f"A variance above {limit} is the CFO's to decide.", code="cfo-required")
    count.status = "approved" if payload["approve"] else "rejected"
    count.decided_by = actor.user_id
    count.decided_at = utcnow()
    count.decision_comment = payload["comment"]
    if payload["approve"]:
        count.transfer_id = _post_variance(session, count, actor.username).id
    return ok_reply(200, cash_count_body(count))


def _post_variance(session: Session, count: CashCount, who: str) -> Any:
    float_account = _float(session, count.branch_id, count.currency)
    if float_account is None:  # floats are never deleted
        raise Conflict("This branch has no float in that currency any more.", code="no-float")
    branch = (count.branch_id, float_account.branch_code or "", count.region_id)
    over_short = _account(
        session,
        domain.over_short_code(float_account.branch_code or "", count.currency),
        "over_short",
        count.currency,
        branch,
    )
    short = count.variance_minor < 0
    debit, credit = (over_short, float_account) if short else (float_account, over_short)
    amount = Money(count.currency, abs(count.variance_minor))
    memo = f"cash count {'short' if short else 'over'} by {amount}, approved by {who}"
    return _transfer(
        session,
        domain.transfer_id("variance", count.id),
        debit,
        credit,
        abs(count.variance_minor),
        "variance",
        memo=memo,
    )


def cash_count_body(count: CashCount) -> dict[str, Any]:
    def money(minor: int) -> dict[str, Any]:
        return {"minor_units": minor, "currency": count.currency}

    return {
        "id": str(count.id),
        "branch_id": count.branch_id,
        "denominations": dict(count.denominations),
        "counted": money(count.counted_minor),
        "book": money(count.book_minor),
        "variance": money(count.variance_minor),
        "counted_by": count.counted_by,
        "counted_by_name": count.counted_by_name,
        "counted_at": count.counted_at.isoformat(),
        "comment": count.comment,
        "status": count.status,
        "decided_by": count.decided_by,
        "decided_at": count.decided_at.isoformat() if count.decided_at else None,
        "decision_comment": count.decision_comment,
        "needs_cfo": abs(count.variance_minor) > CFO_LIMIT_MINOR,
    }


def cash_count_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Cash counts as the gateway projects them."""
    return [
        {
            "id": str(c.id),
            "branch_id": c.branch_id,
            "region_id": c.region_id,
            "status": c.status,
            "counted_at": c.counted_at.isoformat(),
            "body": cash_count_body(c),
        }
        for c in session.scalars(select(CashCount).where(CashCount.id.in_(ids)))
    ]


__all__ = ["cash_count_snapshots", "decide_variance", "record_cash_count"]
