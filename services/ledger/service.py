"""Ledger use cases; each runs inside the unit of work its task adapter opened.

Every movement goes through :func:`_transfer`, which locks the accounts it touches (in id
order, so two transfers never wait on each other crosswise), enforces the float limit on
the locked totals, writes the immutable transfer and updates the cached totals.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, aliased

from services.ledger import days, domain
from services.ledger.domain import Levels, Totals
from services.ledger.levels import branch_levels as _branch_levels
from services.ledger.levels import note as note_float
from services.ledger.levels import review_against, watching_floats
from services.ledger.levels import totals_of as _totals
from services.ledger.models import Account, AwaitingFunds, BalanceCheck, BranchLevels, Replenishment, Transfer
from services.ledger.schemas import account_body, float_body, replenishment_body
from shared.contracts import catalog
from shared.contracts.envelope import Actor, Envelope
from shared.contracts.money import Money
from shared.contracts.permissions import Action, may, permission
from shared.db import upsert
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import Conflict, DomainError, Forbidden, NotFound, ok_reply
from shared.messaging.runtime import PermanentMessageError
from shared.messaging.snapshots import touch

log = logging.getLogger(__name__)


class FloatLimitExceeded(DomainError):
    """The float would go below zero, holds included."""

    status = 422
    code = "insufficient-float"


# -- accounts and transfers -----------------------------------------------------------


def _account(
    session: Session,
    code: str,
    kind: str,
    currency: str,
    branch: tuple[str, str, str] | None = None,
) -> Account:
    """The account with this code, created on first use (concurrent first uses create one)."""
    account = session.scalar(select(Account).where(Account.code == code))
    if account is not None:
        return account
    branch_id, branch_code, region_id = branch or (None, None, None)
    session.execute(
        upsert.insert(session, Account)
        .values(
            id=uuid.uuid4(),
            code=code,
            kind=kind,
            currency=currency,
            branch_id=branch_id,
            branch_code=branch_code,
            region_id=region_id,
            debits_posted=0,
            credits_posted=0,
            debits_pending=0,
            credits_pending=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    account = session.scalars(select(Account).where(Account.code == code)).one()
    touch(session, "account", account.id)  # a new account belongs in the trial balance at once
    return account


def _lock(session: Session, *ids: uuid.UUID) -> dict[uuid.UUID, Account]:
    # populate_existing: the locked, current totals, not what this session loaded earlier.
    rows = session.scalars(
        select(Account)
        .where(Account.id.in_(ids))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {row.id: row for row in rows}


def lock_bundle_accounts(session: Session, payloads: list[dict[str, Any]]) -> None:
    """Lock, in id order, the accounts of the holds a bundle of events resolves (a payment run's
    completions), before any of them is posted; each posting then locks only what it holds."""
    holds = [domain.transfer_id("hold", uuid.UUID(str(p["requisition_id"]))) for p in payloads if "requisition_id" in p]
    if not holds:
        return
    pairs = session.execute(
        select(Transfer.debit_account_id, Transfer.credit_account_id).where(Transfer.id.in_(holds))
    ).all()
    ids = sorted({account for pair in pairs for account in pair})
    if ids:
        session.execute(select(Account.id).where(Account.id.in_(ids)).order_by(Account.id).with_for_update()).all()


def _transfer(
    session: Session,
    transfer_id: uuid.UUID,
    debit: Account,
    credit: Account,
    amount: int,
    kind: str,
    *,
    pending: bool = False,
    pending_id: uuid.UUID | None = None,
    reversal_of: uuid.UUID | None = None,
    requisition_id: uuid.UUID | None = None,
    memo: str = "",
) -> Transfer:
    """Write one transfer (or find it written), keeping the cache and the float limit."""
    existing = session.get(Transfer, transfer_id)
    if existing is not None:
        return existing
    if debit.currency != credit.currency:
        raise DomainError("A transfer moves one currency.", code="currency-mismatch")
    if amount <= 0:
        raise DomainError("A transfer moves a positive amount.", code="invalid-amount")
    accounts = _lock(session, debit.id, credit.id)
    debit, credit = accounts[debit.id], accounts[credit.id]
    note_float(session, debit)
    note_float(session, credit)
    # The totals the trial balance shows move with every transfer, in its transaction.
    touch(session, "ledger_totals", "ledger_totals")
    if credit.kind == "float" and kind not in domain.RESOLVES_HOLD and domain.overdraws(_totals(credit), amount):
        available = Money(credit.currency, _totals(credit).available)
        raise FloatLimitExceeded(f"The float has {available} available; {Money(credit.currency, amount)} is more.")
    domain.book(debit, credit, kind, pending, amount)  # the cached totals move by the one posting rule
    transfer = Transfer(
        id=transfer_id,
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount_minor=amount,
        currency=debit.currency,
        kind=kind,
        pending=pending,
        pending_id=pending_id,
        reversal_of=reversal_of,
        requisition_id=requisition_id,
        memo=memo,
        created_at=utcnow(),
    )
    session.add(transfer)
    days.record(session, transfer, debit, credit, transfer.created_at)
    session.flush()
    return transfer


def _accounts_of(session: Session, transfer: Transfer) -> tuple[Account, Account]:
    """The (debit, credit) accounts of a transfer; foreign keys guarantee both exist."""
    return (
        session.get_one(Account, transfer.debit_account_id),
        session.get_one(Account, transfer.credit_account_id),
    )


def _resolve_hold(session: Session, requisition_id: uuid.UUID, kind: str, memo: str) -> Transfer | None:
    """Post or void a requisition's hold, once; None if there is no hold (or it is resolved)."""
    hold = session.get(Transfer, domain.transfer_id("hold", requisition_id))
    if hold is None:
        return None
    resolved = session.scalar(select(Transfer).where(Transfer.pending_id == hold.id))
    if resolved is not None:
        return resolved if resolved.kind == kind else None
    debit, credit = _accounts_of(session, hold)
    return _transfer(
        session,
        domain.transfer_id(kind, requisition_id),
        debit,
        credit,
        hold.amount_minor,
        kind,
        pending_id=hold.id,
        requisition_id=requisition_id,
        memo=memo,
    )


def reverse_transfer(uow: UnitOfWork, transfer_id: uuid.UUID, memo: str) -> Transfer:
    """Correct a posted transfer with its mirror image; nothing is ever updated or deleted."""
    session = uow.session
    original = session.get(Transfer, transfer_id)
    if original is None:
        raise NotFound("No such transfer.")
    if original.pending or original.kind in ("void", "reversal"):
        raise Conflict("Only posted movements are reversed; holds are voided.", code="not-reversible")
    credit, debit = _accounts_of(session, original)
    return _transfer(
        session,
        domain.transfer_id("reversal", original.id),
        debit,
        credit,
        original.amount_minor,
        "reversal",
        reversal_of=original.id,
        requisition_id=original.requisition_id,
        memo=memo,
    )


# -- reserving ------------------------------------------------------------------------


def _float(session: Session, branch_id: str, currency: str) -> Account | None:
    return session.scalar(
        select(Account).where(Account.kind == "float", Account.branch_id == branch_id, Account.currency == currency)
    )


def _hold(
    uow: UnitOfWork, envelope: Envelope, float_account: Account, requisition_id: uuid.UUID, category: str, amount: int
) -> Transfer:
    session = uow.session
    branch = (float_account.branch_id or "", float_account.branch_code or "", float_account.region_id or "")
    expense = _account(
        session,
        domain.expense_code(category, float_account.branch_code or "", float_account.currency),
        "expense",
        float_account.currency,
        branch,
    )
    hold = _transfer(
        session,
        domain.transfer_id("hold", requisition_id),
        expense,
        float_account,
        amount,
        "hold",
        pending=True,
        requisition_id=requisition_id,
        memo=f"hold for requisition {requisition_id}",
    )
    uow.emit(
        envelope.caused(
            catalog.FUNDS_RESERVED.name,
            {
                "requisition_id": str(requisition_id),
                "branch_id": float_account.branch_id,
                "transfer_id": str(hold.id),
                "amount": {"minor_units": amount, "currency": float_account.currency},
            },
        )
    )
    return hold


def _serve_waiting(uow: UnitOfWork, envelope: Envelope, float_account: Account) -> int:
    """Reserve waiting requisitions in approval order while the float covers the next one."""
    session = uow.session
    waiting = session.scalars(
        select(AwaitingFunds)
        .where(AwaitingFunds.branch_id == float_account.branch_id, AwaitingFunds.currency == float_account.currency)
        .order_by(AwaitingFunds.approved_at, AwaitingFunds.requisition_id)
        .with_for_update()
    ).all()
    served = 0
    for item in waiting:
        _lock(session, float_account.id)
        if _totals(float_account).available < item.amount_minor:
            break  # strictly in approval order: a smaller, later one does not jump the queue
        _hold(uow, envelope, float_account, item.requisition_id, item.category, item.amount_minor)
        session.delete(item)
        _clear_insufficient_funds(uow, envelope, item.requisition_id, "Reserved: the float covers it now.")
        served += 1
    return served


@watching_floats
def on_requisition_approved(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Hold the amount on the branch float, or queue the requisition until funds arrive."""
    session = uow.session
    requisition_id: uuid.UUID = payload["requisition_id"]
    amount: Money = payload["amount"]
    if session.get(Transfer, domain.transfer_id("hold", requisition_id)) or session.get(AwaitingFunds, requisition_id):
        return
    float_account = _float(session, payload["branch_id"], amount.currency)
    queued = session.scalar(
        select(AwaitingFunds.requisition_id).where(AwaitingFunds.branch_id == payload["branch_id"]).limit(1)
    )
    if float_account is not None and queued is None:
        _lock(session, float_account.id)
        if _totals(float_account).available >= amount.minor_units:
            _hold(uow, envelope, float_account, requisition_id, payload["category"], amount.minor_units)
            return
    available = _totals(float_account).available if float_account is not None else 0
    _await_funds(uow, envelope, payload, available)


def _await_funds(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], available: int) -> None:
    """Queue an approved requisition the float cannot cover yet, and say so (event and alert)."""
    requisition_id: uuid.UUID = payload["requisition_id"]
    amount: Money = payload["amount"]
    uow.session.add(
        AwaitingFunds(
            requisition_id=requisition_id,
            branch_id=payload["branch_id"],
            region_id=payload["region_id"],
            category=payload["category"],
            amount_minor=amount.minor_units,
            currency=amount.currency,
            approved_at=payload["approved_at"],
        )
    )
    uow.emit(
        envelope.caused(
            catalog.FUNDS_AWAITED.name,
            {
                "requisition_id": str(requisition_id),
                "branch_id": payload["branch_id"],
                "amount": amount.to_dict(),
                "available_minor": available,
            },
        )
    )
    uow.emit(
        envelope.caused(
            catalog.ALERT_RAISED.name,
            {
                "kind": "insufficient_funds",
                "severity": "warning",
                "subject": f"requisition:{requisition_id}",
                "message": f"{payload['voucher_no']} ({amount}) waits for funds: the float has "
                f"{Money(amount.currency, available)} available.",
                "requisition_id": str(requisition_id),
                "branch_id": payload["branch_id"],
                "source": "ledger",
            },
        )
    )


def on_payment_completed(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """The money left: post the hold (debit the expense, credit the float), exactly once."""
    posted = _resolve_hold(uow.session, payload["requisition_id"], "post", f"paid by {payload['provider']}")
    if posted is None:
        uow.emit(
            envelope.caused(
                catalog.ALERT_RAISED.name,
                {
                    "kind": "payment_without_hold",
                    "severity": "critical",
                    "message": f"Payment {payload['payment_id']} completed but no open hold could be posted.",
                    "requisition_id": str(payload["requisition_id"]),
                    "branch_id": None,
                    "source": "ledger",
                },
            )
        )


@watching_floats
def on_payment_failed(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """A final failure releases the hold; a failure with executions left keeps it."""
    if payload["final"]:
        _release(uow, envelope, payload["requisition_id"], "payment failed for good")


@watching_floats
def _clear_insufficient_funds(uow: UnitOfWork, envelope: Envelope, requisition_id: uuid.UUID, note: str) -> None:
    payload = {"kind": "insufficient_funds", "subject": f"requisition:{requisition_id}", "note": note}
    uow.emit(envelope.caused(catalog.ALERT_CLEARED.name, payload))


@watching_floats
def on_requisition_cancelled(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """A cancelled requisition releases its hold, or leaves the queue of those awaiting funds."""
    waiting = uow.session.get(AwaitingFunds, payload["requisition_id"], with_for_update=True)
    if waiting is not None:
        uow.session.delete(waiting)
        _clear_insufficient_funds(uow, envelope, waiting.requisition_id, "The requisition was cancelled.")
        return
    _release(uow, envelope, payload["requisition_id"], "requisition cancelled")


def _release(uow: UnitOfWork, envelope: Envelope, requisition_id: uuid.UUID, memo: str) -> None:
    voided = _resolve_hold(uow.session, requisition_id, "void", memo)
    if voided is not None:
        _serve_waiting(uow, envelope, uow.session.get_one(Account, voided.credit_account_id))


# -- floats ---------------------------------------------------------------------------


def _require(actor: Actor, action: Action, what: str) -> None:
    if not may(actor, action):
        raise Forbidden(f"Only {permission(action).describe()} may {what}.", code="role-required")


@watching_floats
def open_float(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Fund a branch's float from the HQ bank account (treasury or admin), once per currency."""
    _require(envelope.actor, Action.OPEN_FLOAT, "open a float")
    session = uow.session
    amount: Money = payload["amount"]
    branch = (payload["branch_id"], payload["branch_code"], payload["region_id"])
    existing = _float(session, payload["branch_id"], amount.currency)
    if existing is not None:
        raise Conflict(
            "This branch already has a float in that currency; request a replenishment.", code="float-exists"
        )
    float_account = _account(
        session, domain.float_code(payload["branch_code"], amount.currency), "float", amount.currency, branch
    )
    bank = _account(session, domain.bank_code(amount.currency), "bank", amount.currency)
    _transfer(
        session,
        domain.transfer_id("open", float_account.id),
        float_account,
        bank,
        amount.minor_units,
        "funding",
        memo=f"float opened by {envelope.actor.username}",
    )
    _account(
        session, domain.over_short_code(payload["branch_code"], amount.currency), "over_short", amount.currency, branch
    )
    _serve_waiting(uow, envelope, float_account)
    levels = _branch_levels(session, [payload["branch_id"]]).get(payload["branch_id"], domain.NO_LEVELS)
    return ok_reply(201, float_body(float_account, levels))


def request_replenishment(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Treasury asks to move money from the bank to a float."""
    _require(envelope.actor, Action.REQUEST_REPLENISHMENT, "request a replenishment")
    amount: Money = payload["amount"]
    if _float(uow.session, payload["branch_id"], amount.currency) is None:
        raise NotFound("This branch has no float in that currency.", code="no-float")
    request = Replenishment(
        id=uuid.uuid4(),
        branch_id=payload["branch_id"],
        amount_minor=amount.minor_units,
        currency=amount.currency,
        status="requested",
        requested_by=envelope.actor.user_id,
        requested_at=utcnow(),
        comment=payload["comment"],
        decision_comment="",
    )
    uow.session.add(request)
    uow.session.flush()
    return ok_reply(201, replenishment_body(request))


@watching_floats
def decide_replenishment(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Finance or the CFO approves (the money moves, waiting requisitions are served) or rejects."""
    _require(envelope.actor, Action.DECIDE_REPLENISHMENT, "decide a replenishment")
    session = uow.session
    request = session.get(Replenishment, payload["id"], with_for_update=True)
    if request is None:
        raise NotFound("No such replenishment request.")
    if request.requested_by == envelope.actor.user_id:
        raise Forbidden("Nobody decides their own replenishment request.", code="segregation-of-duties")
    if request.status != "requested":
        raise Conflict(f"This request was {request.status} already.", code="already-decided")
    request.status = "approved" if payload["approve"] else "rejected"
    request.decided_by = envelope.actor.user_id
    request.decided_at = utcnow()
    request.decision_comment = payload["comment"]
    note = f"{request.status.capitalize()} by {envelope.actor.username}."
    uow.emit(
        envelope.caused(
            catalog.ALERT_CLEARED.name,
            {"kind": "replenishment_proposed", "subject": f"replenishment:{request.id}", "note": note},
        )
    )
    if payload["approve"]:
        float_account = _float(session, request.branch_id, request.currency)
        if float_account is None:  # requested against a float that existed; floats are never deleted
            raise Conflict("This branch has no float in that currency any more.", code="no-float")
        bank = _account(session, domain.bank_code(request.currency), "bank", request.currency)
        transfer = _transfer(
            session,
            domain.transfer_id("replenish", request.id),
            float_account,
            bank,
            request.amount_minor,
            "funding",
            memo=f"replenishment approved by {envelope.actor.username}",
        )
        request.transfer_id = transfer.id
        _serve_waiting(uow, envelope, float_account)
    return ok_reply(200, replenishment_body(request))


# -- branch levels (the gateway's directory) -------------------------------------------


def _keep_levels(session: Session, payload: dict[str, Any], levels: Levels, at: datetime) -> bool:
    """Write a branch's row unless an update at least as new is kept already; whether it was written.

    Updates are ordered by when the gateway made them, the envelope's ``occurred_at``: the
    inbox drops a duplicate, but an older update re-sent after a newer one is a message of its
    own and must not undo the newer. The comparison is in the upsert itself, so of two updates
    of one branch applied at once the newer stays, whichever commits last. One at the very
    instant of the kept one is taken for it and changes nothing.
    """
    reorder, imprest = levels.reorder_level, levels.imprest
    values = {
        "branch_id": payload["branch_id"],
        "branch_code": payload["branch_code"],
        "region_id": payload["region_id"],
        "name": payload["name"],
        "head_office": payload["head_office"],
        "reorder_level_minor": reorder.minor_units if reorder else None,
        "reorder_level_currency": reorder.currency if reorder else None,
        "imprest_minor": imprest.minor_units if imprest else None,
        "imprest_currency": imprest.currency if imprest else None,
        "updated_at": at,
    }
    stmt = upsert.insert(session, BranchLevels).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["branch_id"],
        set_={name: stmt.excluded[name] for name in values if name != "branch_id"},
        where=BranchLevels.updated_at < stmt.excluded.updated_at,
    ).returning(BranchLevels.branch_id)
    return session.execute(stmt).first() is not None


def on_branch_directory_updated(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Keep a branch's float levels, and re-publish its floats when they change."""
    try:
        levels = domain.check_levels(Levels(payload["reorder_level"], payload["imprest"]))
    except domain.LevelsError as exc:
        # No retry can make these levels keepable: dead-lettered with an alert, as a malformed
        # message is, rather than recorded as a refusal that no sender reads.
        raise PermanentMessageError(f"invalid {envelope.type} payload: {exc}") from exc
    session = uow.session
    branch_id = payload["branch_id"]
    # Locked, so a concurrent update of the branch cannot change the row between this read
    # and the upsert and leave its floats published with levels no longer kept.
    before = _branch_levels(session, [branch_id], lock=True).get(branch_id)
    if not _keep_levels(session, payload, levels, datetime.fromisoformat(envelope.occurred_at)):
        return
    if levels != before:  # a new name or code alone changes no float's body
        floats = session.scalars(select(Account).where(Account.kind == "float", Account.branch_id == branch_id))
        for account in floats:
            touch(session, "account", account.id)
            _review_new_levels(uow, envelope, account, before or domain.NO_LEVELS, levels)


def _review_new_levels(uow: UnitOfWork, envelope: Envelope, account: Account, old: Levels, new: Levels) -> None:
    """New levels may put a float below a line, or above one, without any money moving."""
    available = _totals(account).available
    was = (available, domain.levels_for(old, account.currency))
    review_against(uow, envelope, account, was, (available, domain.levels_for(new, account.currency)))


# -- the balance check ------------------------------------------------------------------


def derived_totals(session: Session) -> dict[uuid.UUID, Totals]:
    """Every account's totals derived from the transfers alone, aggregated in the database
    (``domain.movement_of`` summed another way: a hold counts while no post or void names
    it, a void only releases its hold, everything else is posted), so the check does not
    trust the rule it checks."""
    resolver = aliased(Transfer)
    held = and_(Transfer.pending.is_(True), resolver.id.is_(None))
    posted = and_(Transfer.pending.is_(False), Transfer.kind != "void")
    totals: dict[uuid.UUID, Totals] = {}
    for side in (Transfer.debit_account_id, Transfer.credit_account_id):
        rows = session.execute(
            select(
                side,
                func.coalesce(func.sum(case((posted, Transfer.amount_minor), else_=0)), 0),
                func.coalesce(func.sum(case((held, Transfer.amount_minor), else_=0)), 0),
            )
            .outerjoin(resolver, resolver.pending_id == Transfer.id)
            .group_by(side)
        ).all()
        for account_id, posted_sum, held_sum in rows:
            t = totals.setdefault(account_id, Totals())
            if side is Transfer.debit_account_id:
                t.debits_posted, t.debits_pending = int(posted_sum), int(held_sum)
            else:
                t.credits_posted, t.credits_pending = int(posted_sum), int(held_sum)
    return totals


def verify_balances(session: Session) -> list[str]:
    """Accounts whose cached totals differ from those derived from the transfers (should be none)."""
    derived = derived_totals(session)
    return [a.code for a in session.scalars(select(Account)) if _totals(a) != derived.get(a.id, Totals())]


def verify_ledger(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Check every cached balance against the transfers, and keep the result for the trial balance."""
    session = uow.session
    mismatched = verify_balances(session)
    negative = [
        a.code for a in session.scalars(select(Account).where(Account.kind == "float")) if _totals(a).available < 0
    ]
    check = BalanceCheck(
        checked_at=utcnow(),
        cache_mismatches=mismatched,
        negative_floats=negative,
        transfers=session.scalar(select(func.count()).select_from(Transfer)) or 0,
    )
    session.add(check)
    if mismatched or negative:
        log.error("ledger check failed: cache mismatches %s, negative floats %s", mismatched, negative)
    return {"cache_mismatches": mismatched, "negative_floats": negative}


# -- read models (shared.messaging.snapshots) ------------------------------------------


def account_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Accounts as the gateway projects them (a float also as its balance, held, available and levels)."""
    accounts = list(session.scalars(select(Account).where(Account.id.in_(ids))))
    levels = _branch_levels(session, {a.branch_id for a in accounts if a.kind == "float" and a.branch_id})
    return [
        {
            "id": str(a.id),
            "code": a.code,
            "kind": a.kind,
            "currency": a.currency,
            "branch_id": a.branch_id,
            "region_id": a.region_id,
            "body": account_body(a),
            "float": float_body(a, levels.get(a.branch_id or "", domain.NO_LEVELS)) if a.kind == "float" else None,
        }
        for a in accounts
    ]


def replenishment_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Replenishment requests as the gateway projects them, scoped by their float's branch and region."""
    requests = list(session.scalars(select(Replenishment).where(Replenishment.id.in_(ids))))
    regions = dict(
        session.execute(
            select(Account.branch_id, Account.region_id)
            .where(Account.kind == "float", Account.branch_id.in_({r.branch_id for r in requests}))
            .distinct()
        ).all()
    )
    return [
        {
            "id": str(r.id),
            "branch_id": r.branch_id,
            "region_id": regions.get(r.branch_id) or "",
            "status": r.status,
            "requested_at": r.requested_at.isoformat(),
            "body": replenishment_body(r),
        }
        for r in requests
    ]


def ledger_totals_snapshot(session: Session, _ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Debits and credits, posted and pending, per currency, over every account: one document,
    published with each transfer, so the trial balance is always a consistent cut of the ledger
    (the accounts' own snapshots may reach the gateway in any order)."""
    totals: dict[str, dict[str, int]] = {}
    for currency, dp, cp, dh, ch in session.execute(
        select(
            Account.currency,
            func.sum(Account.debits_posted),
            func.sum(Account.credits_posted),
            func.sum(Account.debits_pending),
            func.sum(Account.credits_pending),
        ).group_by(Account.currency)
    ):
        totals[currency] = {
            "debits_posted": int(dp or 0),
            "credits_posted": int(cp or 0),
            "debits_pending": int(dh or 0),
            "credits_pending": int(ch or 0),
        }
    balanced = all(
        t["debits_posted"] == t["credits_posted"] and t["debits_pending"] == t["credits_pending"]
        for t in totals.values()
    )
    return [{"id": "ledger_totals", "body": {"totals": totals, "balanced": balanced}}]


def ledger_check_snapshot(session: Session, _ids: Sequence[Any]) -> list[dict[str, Any]]:
    """The last balance check, as one document (none yet: not checked)."""
    check = session.scalar(select(BalanceCheck).order_by(BalanceCheck.id.desc()).limit(1))
    body: dict[str, Any] = {"checked_at": None, "cache_mismatches": [], "negative_floats": [], "transfers": 0}
    if check is not None:
        body = {
            "checked_at": check.checked_at.isoformat(),
            "cache_mismatches": list(check.cache_mismatches),
            "negative_floats": list(check.negative_floats),
            "transfers": check.transfers,
        }
    return [{"id": "ledger_check", "body": body}]
