"""Payment runs: treasury pays many ready requisitions with one code (maker-checker above a total).

Decide, then do, as a payment paid on its own: the rows are locked in one order (the
officer's guard, the run, the requisitions, their payments) and :mod:`run_rules` decides.
The code that authorises a run (the maker's, or the checker's above the total) is all the
officer waits for: it marks the run started and sends one job, :func:`launch_payment_run`,
which checks each item again, leaves out those paid, cancelled or under way since, and starts
the others' executions exactly as a single payment's is started (the same row, the same
execution record), sending them to the disbursement jobs in batches; the provider is asked
once per payment id however often anything is delivered. How far a run got is its items'
executions' outcomes, which the payments themselves carry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from services.payment import domain, run_rules
from services.payment.batches import send_in_batches
from services.payment.domain import RunRule
from services.payment.models import (
    OtpEnrolment,
    OtpGuard,
    PayableRequisition,
    Payment,
    PaymentExecution,
    PaymentRun,
    PaymentRunItem,
)
from services.payment.run_rules import Candidate, RunState, Selection
from services.payment.service import (
    PaymentConfig,
    authenticator_facts,
    error_of,
    execution_row,
    locked_guard,
    new_payment_row,
    payable_facts,
    record_attempt,
    refuse_code,
    restarted,
    say_started,
    take_step,
)
from shared.contracts.catalog import LAUNCH_PAYMENT_RUN, PAYMENT_RUN_CHANGED
from shared.contracts.envelope import Actor, Envelope
from shared.db.engine import Database
from shared.db.uow import UnitOfWork
from shared.messaging.errors import NotFound, ok_reply
from shared.messaging.snapshots import built, touch

# What a run's reply carries for the gateway to project before it answers: the run itself; its
# hundred payments reach the gateway through the projector (the run's page shows them as paying).
REPLY_SNAPSHOTS = (PAYMENT_RUN_CHANGED.name,)

# The namespace of run ids: a run's id derives from the command that made it, so a
# redelivered command finds its run made (the inbox already answers it; this is belt and braces).
RUN_NAMESPACE = uuid.UUID("6f0f7a53-3c39-4b1e-9d55-9c1f3c1f6a10")


@dataclass(frozen=True)
class _Locked:
    """A run's requisitions and payments, locked, by requisition id."""

    requisitions: dict[uuid.UUID, PayableRequisition]
    payments: dict[uuid.UUID, Payment]

    def candidates(self, ids: Sequence[uuid.UUID]) -> list[Candidate]:
        return [
            Candidate(
                requisition_id=rid,
                requisition=payable_facts(self.requisitions.get(rid)),
                payment=_payment_facts(self.payments.get(rid)),
            )
            for rid in ids
        ]


def _payment_facts(payment: Payment | None) -> domain.PaymentFacts | None:
    return None if payment is None else domain.PaymentFacts(payment.state, payment.executions)


def _lock(session: Session, ids: Sequence[uuid.UUID]) -> _Locked:
    """Lock the requisitions and then their payments, each in id order (as every use case does)."""
    ordered = sorted(set(ids))
    requisitions = session.scalars(
        select(PayableRequisition)
        .where(PayableRequisition.requisition_id.in_(ordered))
        .order_by(PayableRequisition.requisition_id)
        .with_for_update()
    ).all()
    payment_ids = sorted(domain.payment_id_for(rid) for rid in ordered)
    payments = session.scalars(
        select(Payment).where(Payment.id.in_(payment_ids)).order_by(Payment.id).with_for_update()
    ).all()
    return _Locked({r.requisition_id: r for r in requisitions}, {p.requisition_id: p for p in payments})


def _check_code(
    uow: UnitOfWork,
    envelope: Envelope,
    guard_row: OtpGuard,
    code: str,
    now: datetime,
    config: PaymentConfig,
    run_id: uuid.UUID,
) -> dict[str, Any] | None:
    """Check the officer's code and spend its step: None when it is good, else the answer
    (a wrong or spent code is counted and kept; a missing authenticator is a refusal).
    ``guard_row``: the officer's guard, locked when the use case began."""
    session = uow.session
    actor = envelope.actor
    guard = domain.Guard(guard_row.failures, guard_row.locked_until)
    enrolment = session.get(OtpEnrolment, actor.user_id)
    checked = domain.check_executor_code(guard, authenticator_facts(session, enrolment, now, config), code, now)
    if isinstance(checked, domain.Refusal):
        raise error_of(checked.problem)
    if isinstance(checked, domain.CodeRefused):
        return refuse_code(uow, envelope, guard_row, checked, now, None, action="run")
    if not take_step(session, actor.user_id, checked, now, purpose="payment-run"):
        return refuse_code(uow, envelope, guard_row, domain.reused_code(guard, now), now, None, action="run")
    if guard_row.failures:
        guard_row.failures = 0
        guard_row.updated_at = now
    record_attempt(session, envelope, "run", None, "accepted", "ok", detail=f"run {run_id}", step=checked)
    return None


def _refuse_executor(session: Session, envelope: Envelope, now: datetime) -> OtpGuard:
    """Refuses anyone outside treasury, or locked out, before anything is looked at; the
    officer's guard, locked for the rest of the use case (the code is counted on it)."""
    guard_row = locked_guard(session, envelope.actor.user_id, now)
    refusal = domain.executor_refusal(envelope.actor, domain.Guard(guard_row.failures, guard_row.locked_until), now)
    if refusal is not None:
        raise error_of(refusal.problem)
    return guard_row


def start_payment_run(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Make a run of the selected requisitions and authorise it with the maker's code.

    Items no rule lets this officer pay are left out, with the reason. Up to the configured
    total the run starts at once; above it, it waits for a second officer.
    """
    session = uow.session
    now = config.clock()
    guard_row = _refuse_executor(session, envelope, now)
    ids: list[uuid.UUID] = list(dict.fromkeys(payload["requisition_ids"]))  # first mention wins
    locked = _lock(session, ids)
    selection = run_rules.select(locked.candidates(ids), envelope.actor.user_id, config.max_executions)
    refusal = run_rules.nothing_to_pay(selection)
    if refusal is not None:
        raise error_of(refusal.problem)
    run_id = uuid.uuid5(RUN_NAMESPACE, envelope.message_id)
    refused_code = _check_code(uow, envelope, guard_row, payload["otp"], now, config, run_id)
    if refused_code is not None:
        return refused_code
    run = _new_run(session, envelope, run_id, selection, now, config)
    session.flush()
    _add_items(session, run, ids, selection, locked)
    if run.state == RunState.STARTED:
        _launch(uow, envelope, run)
    return ok_reply(201, run_reply(session, run), snapshots_of=REPLY_SNAPSHOTS)


def _launch(uow: UnitOfWork, envelope: Envelope, run: PaymentRun) -> None:
    """Have the run's payments started, once this commit is made (:func:`launch_payment_run`)."""
    uow.emit(envelope.caused(LAUNCH_PAYMENT_RUN.name, {"run_id": str(run.id)}))


def _new_run(
    session: Session, envelope: Envelope, run_id: uuid.UUID, selection: Selection, now: datetime, config: PaymentConfig
) -> PaymentRun:
    dual = run_rules.needs_second_officer(selection.total_minor, config.run_dual_above_minor)
    run = PaymentRun(
        id=run_id,
        state=RunState.AWAITING_SECOND if dual else RunState.STARTED,
        currency=selection.currency or "",
        total_minor=selection.total_minor,
        item_count=len(selection.taken),
        dual_above_minor=config.run_dual_above_minor,
        maker_id=envelope.actor.user_id,
        maker_name=envelope.actor.username,
        created_at=now,
        started_at=None,
        cancel_reason="",
    )
    session.add(run)
    return run


def _add_items(
    session: Session, run: PaymentRun, ids: Sequence[uuid.UUID], selection: Selection, locked: _Locked
) -> None:
    """Every selected requisition, in the order selected: taken, or left out and why (the
    execution each starts is set when the run is launched). One statement for them all."""
    left = {item.requisition_id: item for item in selection.left}
    rows = [
        _item_row(run, position, rid, locked.requisitions.get(rid), left.get(rid)) for position, rid in enumerate(ids)
    ]
    session.execute(insert(PaymentRunItem), rows)
    touch(session, "payment_run", run.id)


def _item_row(
    run: PaymentRun,
    position: int,
    rid: uuid.UUID,
    requisition: PayableRequisition | None,
    out: run_rules.Left | None,
) -> dict[str, Any]:
    """A run item's columns: what payment knew of the requisition (blank if nothing), and why it
    is left out, if it is."""

    def known(name: str, default: Any = "") -> Any:
        value = getattr(requisition, name) if requisition is not None else None
        return default if value is None else value

    return {
        "run_id": run.id,
        "requisition_id": rid,
        "position": position,
        "payment_id": domain.payment_id_for(rid),
        "voucher_no": known("voucher_no"),
        "branch_id": known("branch_id"),
        "amount_minor": known("amount_minor", 0),
        "currency": known("currency", run.currency),
        "payee_name": known("payee_name"),
        "payee_method": known("payee_method"),
        "included": out is None,
        "execution": None,
        "refusal": "" if out is None else out.rule,
        "detail": "" if out is None else out.detail,
    }


def _start(
    uow: UnitOfWork,
    envelope: Envelope,
    run: PaymentRun,
    selection: Selection,
    locked: _Locked,
    now: datetime,
    config: PaymentConfig,
) -> None:
    """Start each taken item's execution, as a payment paid on its own starts (the maker executes).

    A payment's first execution is inserted with the others in one statement; one executed
    before (it failed) is moved on as a single payment's is.
    """
    session = uow.session
    maker = envelope.actor if envelope.actor.user_id == run.maker_id else _maker_of(run)
    new_payments: list[dict[str, Any]] = []
    executions: list[dict[str, Any]] = []
    started: list[Payment | dict[str, Any]] = []
    for taken in selection.taken:
        payment = locked.payments.get(taken.requisition_id)
        if payment is None:
            row = new_payment_row(locked.requisitions[taken.requisition_id], maker, now)
            row.update(state=taken.state, executions=taken.number)
            new_payments.append(row)
            started.append(row)
            touch(session, "payment", row["id"])
        else:
            restarted(payment, taken.state, taken.number, maker, now)
            started.append(payment)
        executions.append(execution_row(domain.payment_id_for(taken.requisition_id), taken.number, maker, now, run.id))
    if new_payments:
        session.execute(insert(Payment), new_payments)
    session.flush()
    session.execute(insert(PaymentExecution), executions)
    for payment in started:
        say_started(uow, envelope, payment)
    payment_ids = [domain.payment_id_for(taken.requisition_id) for taken in selection.taken]
    send_in_batches(uow, envelope, payment_ids, config.batch_size)


def _maker_of(run: PaymentRun) -> Actor:
    """The maker as the payments' executor, when the checker's authorisation starts the run."""
    return Actor(user_id=run.maker_id, username=run.maker_name)


def authorise_payment_run(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """A second treasury officer authorises a run above the threshold with their own code; it is
    launched straight after (:func:`launch_payment_run`), which leaves out the items paid,
    cancelled or started elsewhere since the run was made."""
    session = uow.session
    now = config.clock()
    guard_row = _refuse_executor(session, envelope, now)
    run = _locked_run(session, payload["run_id"])
    items = _items_and_people(session, run.id)
    refusal = run_rules.checker_refusal(
        run.state,
        run.maker_id,
        envelope.actor.user_id,
        [(item.requester_id, item.approver_ids) for item in items if item.included],
    )
    if refusal is not None:
        raise error_of(refusal.problem)
    refused_code = _check_code(uow, envelope, guard_row, payload["otp"], now, config, run.id)
    if refused_code is not None:
        return refused_code
    run.state = RunState.STARTED
    run.checker_id = envelope.actor.user_id
    run.checker_name = envelope.actor.username
    _launch(uow, envelope, run)
    session.flush()
    return ok_reply(200, _published_body(session, run, items), snapshots_of=REPLY_SNAPSHOTS)


def launch_payment_run(
    db: Database, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Start the payments of a run just authorised, once (a run started already is left as it is).

    Each item is checked again under the same locks as a payment paid on its own; one paid,
    cancelled or under way since the run was made is left out now, with the reason.
    """
    with db.uow() as uow:
        session = uow.session
        run = session.get(PaymentRun, payload["run_id"], with_for_update=True)
        if run is None or run.state != RunState.STARTED or run.started_at is not None:
            return {"run_id": str(payload["run_id"]), "launched": False}
        now = config.clock()
        items = _items(session, run.id)
        ids = [item.requisition_id for item in items if item.included]
        locked = _lock(session, ids)
        selection = run_rules.select(locked.candidates(ids), run.maker_id, config.max_executions)
        _mark_items(session, run, items, selection)
        run.started_at = now
        run.item_count = len(selection.taken)
        run.total_minor = selection.total_minor
        _start(uow, envelope, run, selection, locked, now, config)
        uow.commit()
        return {"run_id": str(run.id), "launched": True, "started": len(selection.taken)}


def _mark_items(session: Session, run: PaymentRun, items: Sequence[Any], selection: Selection) -> None:
    """At the launch: the execution each taken item starts, and the items a rule stops now (paid
    or cancelled since the run was made) left out, with the reason."""
    left = {item.requisition_id: item for item in selection.left}
    numbers = {item.requisition_id: item.number for item in selection.taken}
    changes = []
    for item in items:
        out = left.get(item.requisition_id)
        if item.included and out is not None:
            changes.append({"rid": item.requisition_id, "inc": False, "ex": None, "ref": out.rule, "det": out.detail})
        elif item.requisition_id in numbers:
            changes.append(
                {"rid": item.requisition_id, "inc": True, "ex": numbers[item.requisition_id], "ref": "", "det": ""}
            )
    t = PaymentRunItem.__table__
    if not changes:
        return
    session.execute(
        update(t)
        .where(t.c.run_id == run.id, t.c.requisition_id == bindparam("rid"))
        .values(
            included=bindparam("inc"), execution=bindparam("ex"), refusal=bindparam("ref"), detail=bindparam("det")
        ),
        changes,
    )
    touch(session, "payment_run", run.id)


def cancel_payment_run(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Treasury drops a run still waiting for its second officer (nothing of it was started)."""
    session = uow.session
    now = config.clock()
    refusal = domain.treasury_refusal(envelope.actor)
    if refusal is not None:
        raise error_of(refusal.problem)
    run = _locked_run(session, payload["run_id"])
    if run.state != RunState.AWAITING_SECOND:
        raise error_of(
            domain.Problem(409, RunRule.NOT_AWAITING, "Only a run waiting for its second authorisation is cancelled.")
        )
    run.state = RunState.CANCELLED
    run.cancelled_at = now
    run.cancel_reason = payload.get("reason") or ""
    run.checker_id = envelope.actor.user_id
    run.checker_name = envelope.actor.username
    return ok_reply(200, run_reply(session, run))


def _locked_run(session: Session, run_id: uuid.UUID) -> PaymentRun:
    run = session.get(PaymentRun, run_id, with_for_update=True)
    if run is None:
        raise NotFound("No payment run with this id.")
    return run


def _items(session: Session, run_id: uuid.UUID) -> list[Any]:
    """A run's items as rows, in the order selected."""
    t = PaymentRunItem.__table__
    return list(session.execute(select(t).where(t.c.run_id == run_id).order_by(t.c.position)))


def _items_and_people(session: Session, run_id: uuid.UUID) -> list[Any]:
    """A run's items as rows, in the order selected, each with who asked for and approved its
    requisition (read, not locked: these do not change once it is approved; the launch checks
    the rest under its locks). None where the payment service heard nothing of it."""
    t = PaymentRunItem.__table__
    r = PayableRequisition.__table__
    return list(
        session.execute(
            select(t, r.c.requester_id, r.c.approver_ids)
            .outerjoin(r, r.c.requisition_id == t.c.requisition_id)
            .where(t.c.run_id == run_id)
            .order_by(t.c.position)
        )
    )


# -- what the gateway shows --------------------------------------------------------------


def run_body(run: PaymentRun, items: Sequence[Any]) -> dict[str, Any]:
    """The JSON body of a run: who made and authorised it, its total, and each item as selected.

    Each included item names its payment and the execution the run started; the gateway reads
    that execution's outcome from the payment's own read model (the run's progress).
    """
    return {
        "id": str(run.id),
        "state": run.state,
        "total": {"minor_units": run.total_minor, "currency": run.currency},
        "count": run.item_count,
        "dual_above": {"minor_units": run.dual_above_minor, "currency": run.currency},
        "needs_second_officer": run_rules.needs_second_officer(run.total_minor, run.dual_above_minor),
        "maker_id": run.maker_id,
        "maker_name": run.maker_name,
        "checker_id": run.checker_id,
        "checker_name": run.checker_name,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "cancelled_at": run.cancelled_at.isoformat() if run.cancelled_at else None,
        "cancel_reason": run.cancel_reason,
        "items": [_item_body(item) for item in items],
    }


def _item_body(item: Any) -> dict[str, Any]:
    return {
        "requisition_id": str(item.requisition_id),
        "payment_id": str(item.payment_id),
        "voucher_no": item.voucher_no,
        "branch_id": item.branch_id,
        "amount": {"minor_units": item.amount_minor, "currency": item.currency},
        "payee": {"name": item.payee_name, "method": item.payee_method},
        "included": item.included,
        "execution": item.execution,
        "left_out": None if item.included else {"rule": item.refusal, "detail": item.detail},
    }


def run_reply(session: Session, run: PaymentRun) -> dict[str, Any]:
    """A reply's body of a run whose changes are all made (``_items`` flushes them first)."""
    return _published_body(session, run, _items(session, run.id))


def _published_body(session: Session, run: PaymentRun, items: Sequence[Any]) -> dict[str, Any]:
    """The body of a run as its changes leave it (flushed), kept for the commit's snapshot too:
    a run of a hundred is built once, not again from two more queries."""
    snapshot = _snapshot(run, items)
    built(session, "payment_run", run.id, snapshot)
    body: dict[str, Any] = snapshot["body"]
    return body


def payment_run_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Runs as the gateway projects them."""
    runs = list(session.scalars(select(PaymentRun).where(PaymentRun.id.in_(ids))))
    t = PaymentRunItem.__table__
    items: dict[uuid.UUID, list[Any]] = {}
    for item in session.execute(select(t).where(t.c.run_id.in_([r.id for r in runs])).order_by(t.c.position)):
        items.setdefault(item.run_id, []).append(item)
    return [_snapshot(run, items.get(run.id, [])) for run in runs]


def _snapshot(run: PaymentRun, items: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "state": run.state,
        "created_at": run.created_at.isoformat(),
        "body": run_body(run, items),
    }
