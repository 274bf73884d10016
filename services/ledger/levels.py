"""A float against its levels: alerts when its available balance crosses them, and the
replenishment proposed when it falls below its reorder level.

Every transfer that moves a float notes the float's available balance before it (the first
time in a unit of work); a use case that moves floats is wrapped in :func:`watching_floats`,
which compares each noted float's balance before and after, once, at the end:

- below the reorder level: ``float_low`` raised; back at or above it: cleared;
- below 80 % of it: ``float_critical`` raised; back at or above: cleared;
- below the reorder level with no replenishment request open for the float, a request for
  the imprest amount minus the available balance is proposed (by ``system``), with a
  ``replenishment_proposed`` alert for finance and the CFO to decide it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.ledger import domain
from services.ledger.models import Account, BranchLevels, Replenishment
from shared.contracts import catalog
from shared.contracts.envelope import Envelope
from shared.contracts.money import Money
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork

NOTED = "ledger.floats_before"
CRITICAL_PERCENT = 80
PROPOSER = "system"  # who proposes an automatic replenishment

Handler = TypeVar("Handler", bound=Callable[..., Any])


def note(session: Session, account: Account) -> None:
    """Remember a float's available balance before this unit of work first moved it."""
    if account.kind == "float":
        session.info.setdefault(NOTED, {}).setdefault(account.id, totals_of(account).available)


def watching_floats(handler: Handler) -> Handler:
    """Run the use case, then review every float it moved against its levels."""

    @functools.wraps(handler)
    def run(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *rest: Any) -> Any:
        uow.session.info.pop(NOTED, None)
        result = handler(uow, envelope, payload, *rest)
        for account_id, before in uow.session.info.pop(NOTED, {}).items():
            review(uow, envelope, uow.session.get_one(Account, account_id), before)
        return result

    return run  # type: ignore[return-value]


def thresholds(reorder_level: int) -> dict[str, int]:
    """The alert kinds and the balance below which each is raised."""
    return {"float_low": reorder_level, "float_critical": reorder_level * CRITICAL_PERCENT // 100}


def review(uow: UnitOfWork, envelope: Envelope, account: Account, before: int) -> None:
    """Raise or clear the float's level alerts as its balance crossed them; propose a replenishment."""
    levels = _levels(uow.session, account)
    review_against(uow, envelope, account, (before, levels), (_available(account), levels))


def review_against(
    uow: UnitOfWork,
    envelope: Envelope,
    account: Account,
    was: tuple[int, domain.Levels],
    now: tuple[int, domain.Levels],
) -> None:
    """Compare a float's (available, levels) before and after: the lines crossed either way,
    by the balance moving or by the levels changing."""
    subject = f"float:{account.branch_id}:{account.currency}"
    available = now[0]
    for kind in ("float_low", "float_critical"):
        below_before, below_now = _below(kind, *was), _below(kind, *now)
        if below_now and not below_before:
            uow.emit(envelope.caused(catalog.ALERT_RAISED.name, _raised(account, kind, subject, available, now[1])))
        elif below_before and not below_now:
            note = f"Available {Money(account.currency, available)} is no longer below this level."
            uow.emit(envelope.caused(catalog.ALERT_CLEARED.name, {"kind": kind, "subject": subject, "note": note}))
    if now[1].reorder_level is not None and available < now[1].reorder_level.minor_units:
        propose(uow, envelope, account, available, now[1])


def propose(uow: UnitOfWork, envelope: Envelope, account: Account, available: int, levels: domain.Levels) -> None:
    """A replenishment up to the imprest amount, unless one is open for this float already."""
    session = uow.session
    if levels.imprest is None or levels.imprest.minor_units <= available:
        return
    open_request = session.scalar(
        select(Replenishment.id).where(
            Replenishment.branch_id == account.branch_id,
            Replenishment.currency == account.currency,
            Replenishment.status == "requested",
        )
    )
    if open_request is not None:
        return
    amount = levels.imprest.minor_units - available
    request = Replenishment(
        id=uuid.uuid4(),
        branch_id=account.branch_id or "",
        amount_minor=amount,
        currency=account.currency,
        status="requested",
        requested_by=PROPOSER,
        requested_at=utcnow(),
        comment=(
            f"Proposed: {Money(account.currency, available)} available is below the reorder level "
            f"{levels.reorder_level}; this tops it up to the imprest {levels.imprest}."
        ),
        decision_comment="",
    )
    session.add(request)
    session.flush()
    uow.emit(
        envelope.caused(
            catalog.ALERT_RAISED.name,
            {
                "kind": "replenishment_proposed",
                "severity": "info",
                "message": f"{account.branch_code}: a replenishment of {Money(account.currency, amount)} "
                "is proposed and waits for finance or the CFO.",
                "subject": f"replenishment:{request.id}",
                "branch_id": account.branch_id,
                "region_id": account.region_id,
                "source": "ledger",
            },
        )
    )


def _below(kind: str, available: int, levels: domain.Levels) -> bool:
    """Whether the float is below the line of this alert kind (never, without a reorder level)."""
    if levels.reorder_level is None:
        return False
    return available < thresholds(levels.reorder_level.minor_units)[kind]


def _raised(account: Account, kind: str, subject: str, available: int, levels: domain.Levels) -> dict[str, Any]:
    critical = kind == "float_critical"
    line = "80 % of its reorder level" if critical else "its reorder level"
    return {
        "kind": kind,
        "severity": "critical" if critical else "warning",
        "message": f"{account.branch_code} float: {Money(account.currency, available)} available, below {line} "
        f"({levels.reorder_level}).",
        "subject": subject,
        "branch_id": account.branch_id,
        "region_id": account.region_id,
        "source": "ledger",
    }


def totals_of(account: Account) -> domain.Totals:
    """An account's cached totals."""
    return domain.Totals(account.debits_posted, account.credits_posted, account.debits_pending, account.credits_pending)


def _available(account: Account) -> int:
    return totals_of(account).available


def _money_or_none(minor: int | None, currency: str | None) -> Money | None:
    return Money(currency, minor) if minor is not None and currency is not None else None


def branch_levels(session: Session, branch_ids: Iterable[str], *, lock: bool = False) -> dict[str, domain.Levels]:
    """The levels kept for these branches (a branch none were kept for is absent).

    Columns, not ORM rows: the ledger writes the table with a Core upsert, which an ORM row
    loaded earlier in the session would not show.
    """
    ids = sorted(set(branch_ids))
    if not ids:
        return {}
    query = select(
        BranchLevels.branch_id,
        BranchLevels.reorder_level_minor,
        BranchLevels.reorder_level_currency,
        BranchLevels.imprest_minor,
        BranchLevels.imprest_currency,
    ).where(BranchLevels.branch_id.in_(ids))
    return {
        row.branch_id: domain.Levels(
            _money_or_none(row.reorder_level_minor, row.reorder_level_currency),
            _money_or_none(row.imprest_minor, row.imprest_currency),
        )
        for row in session.execute(query.with_for_update() if lock else query)
    }


def _levels(session: Session, account: Account) -> domain.Levels:
    found = branch_levels(session, [account.branch_id or ""]).get(account.branch_id or "", domain.NO_LEVELS)
    return domain.levels_for(found, account.currency)
