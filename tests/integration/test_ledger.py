"""The ledger's use cases on PostgreSQL: holds, posting, voids, the float limit and a float's levels
under concurrency."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from services.ledger import domain, service
from services.ledger.models import Account, AwaitingFunds, Transfer
from shared.config import Settings
from shared.contracts.envelope import SYSTEM_ACTOR, Actor, Envelope
from shared.contracts.money import Money
from shared.db.engine import Database
from shared.db.migrate import upgrade
from shared.messaging.errors import DomainError
from shared.messaging.snapshots import TOUCHED
from tests.support import amounts_of, scalar, wait_for

TREASURY = Actor("t1", "tess", roles=frozenset({"treasury"}))
FINANCE = Actor("f1", "fred", roles=frozenset({"finance"}))
AUDITOR = Actor("a1", "ann", roles=frozenset({"auditor"}))
START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ledger(settings: Settings) -> Iterator[Database]:
    """A ledger database of its own: no relay publishes what these tests emit."""
    url = make_url(settings.database_url("ledger")).set(database="pettycash_test_ledger_cases")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "pettycash_test_ledger_cases" WITH (FORCE)'))
    admin.dispose()
    rendered = url.render_as_string(hide_password=False)
    upgrade("services.ledger", rendered)
    db = Database(rendered, pool_size=20, max_overflow=30)
    yield db
    db.dispose()


def run(db: Database, use_case: Any, payload: dict[str, Any], actor: Actor = TREASURY) -> Any:
    envelope = Envelope(type="test", payload={}, actor=actor)
    with db.uow() as uow:
        result = use_case(uow, envelope, payload)
        uow.commit()
    return result


def open_float(db: Database, minor: int) -> str:
    branch = f"b-{uuid.uuid4().hex[:8]}"
    payload = {"branch_id": branch, "branch_code": branch.upper(), "region_id": "r1", "amount": Money("KES", minor)}
    run(db, service.open_float, payload)
    return branch


def approved(db: Database, branch: str, minor: int, at: datetime, rid: uuid.UUID | None = None) -> uuid.UUID:
    rid = rid or uuid.uuid4()
    payload = {
        "requisition_id": rid,
        "branch_id": branch,
        "region_id": "r1",
        "voucher_no": "V-1",
        "category": "fuel",
        "amount": Money("KES", minor),
        "approved_at": at,
    }
    run(db, service.on_requisition_approved, payload)
    return rid


def status(db: Database, branch: str) -> dict[str, Any]:
    """The branch float as the ledger publishes it to the gateway (its read-model snapshot)."""
    with db.uow() as uow:
        ids = uow.session.scalars(select(Account.id).where(Account.kind == "float", Account.branch_id == branch)).all()
        [snapshot] = service.account_snapshots(uow.session, ids)
    return amounts_of(snapshot["float"])


def trial_balance(db: Database) -> dict[str, Any]:
    """Debits against credits over every account, and the scheduled cache check's result."""
    with db.uow() as uow:
        check = service.verify_ledger(uow, Envelope(type="q", payload={}, actor=AUDITOR), {})
        sums = uow.session.execute(
            select(
                func.sum(Account.debits_posted) - func.sum(Account.credits_posted),
                func.sum(Account.debits_pending) - func.sum(Account.credits_pending),
            ).group_by(Account.currency)
        ).all()
    balanced = all(posted == 0 and pending == 0 for posted, pending in sums) and not check["cache_mismatches"]
    return {"balanced": balanced, **check}


def test_concurrent_holds_never_overdraw_the_float(ledger: Database) -> None:
    branch = open_float(ledger, 10_000)
    barrier = threading.Barrier(30)
    errors: list[BaseException] = []

    def approve_one(i: int) -> None:
        try:
            barrier.wait()
            approved(ledger, branch, 700, START + timedelta(seconds=i))
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=approve_one, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    float_now = status(ledger, branch)
    assert float_now["available"] >= 0
    assert float_now["held"] == 14 * 700  # floor(10,000 / 700) holds, no more
    waiting = scalar(ledger, "SELECT count(*) FROM awaiting_funds WHERE branch_id = :b", b=branch)
    assert waiting == 30 - 14
    assert trial_balance(ledger)["balanced"] is True


def test_hold_post_and_void_happen_once(ledger: Database) -> None:
    branch = open_float(ledger, 5_000)
    rid = approved(ledger, branch, 1_200, START)
    approved(ledger, branch, 1_200, START, rid)  # redelivered
    assert status(ledger, branch) == {"balance": 5_000, "held": 1_200, "available": 3_800}

    paid = {"requisition_id": rid, "payment_id": uuid.uuid4(), "provider": "cash"}
    run(ledger, service.on_payment_completed, paid)
    run(ledger, service.on_payment_completed, paid)
    run(ledger, service.on_requisition_cancelled, {"requisition_id": rid})  # too late: posted stays posted
    assert status(ledger, branch) == {"balance": 3_800, "held": 0, "available": 3_800}
    with ledger.uow() as uow:
        kinds = sorted(t.kind for t in uow.session.scalars(select(Transfer).where(Transfer.requisition_id == rid)))
    assert kinds == ["hold", "post"]

    other = approved(ledger, branch, 500, START)
    run(ledger, service.on_payment_failed, {"requisition_id": other, "final": False})
    assert status(ledger, branch)["held"] == 500  # executions left: the hold stays
    run(ledger, service.on_payment_failed, {"requisition_id": other, "final": True})
    run(ledger, service.on_payment_failed, {"requisition_id": other, "final": True})
    assert status(ledger, branch) == {"balance": 3_800, "held": 0, "available": 3_800}
    assert trial_balance(ledger)["balanced"] is True


def test_awaiting_funds_are_served_in_approval_order(ledger: Database) -> None:
    branch = open_float(ledger, 1_000)
    first = approved(ledger, branch, 800, START)
    second = approved(ledger, branch, 500, START + timedelta(minutes=1))
    third = approved(ledger, branch, 100, START + timedelta(minutes=2))  # fits, but waits its turn
    assert status(ledger, branch)["held"] == 800
    with ledger.uow() as uow:
        queued = [
            a.requisition_id
            for a in uow.session.scalars(
                select(AwaitingFunds).where(AwaitingFunds.branch_id == branch).order_by(AwaitingFunds.approved_at)
            )
        ]
    assert queued == [second, third]

    request = run(
        ledger, service.request_replenishment, {"branch_id": branch, "amount": Money("KES", 400), "comment": ""}
    )
    with pytest.raises(DomainError, match="their own"):
        run(
            ledger,
            service.decide_replenishment,
            {"id": uuid.UUID(request["body"]["id"]), "approve": True, "comment": ""},
            replace(TREASURY, roles=frozenset({"treasury", "finance"})),
        )
    run(
        ledger,
        service.decide_replenishment,
        {"id": uuid.UUID(request["body"]["id"]), "approve": True, "comment": "ok"},
        FINANCE,
    )
    assert status(ledger, branch) == {"balance": 1_400, "held": 1_400, "available": 0}
    assert scalar(ledger, "SELECT count(*) FROM awaiting_funds WHERE branch_id = :b", b=branch) == 0
    holds = {
        t
        for t in (first, second, third)
        if scalar(ledger, "SELECT count(*) FROM transfers WHERE id = :i", i=domain.transfer_id("hold", t))
    }
    assert holds == {first, second, third}


def test_cancelling_releases_the_hold_and_serves_the_queue(ledger: Database) -> None:
    branch = open_float(ledger, 1_000)
    first = approved(ledger, branch, 900, START)
    waiting = approved(ledger, branch, 600, START + timedelta(minutes=1))
    run(ledger, service.on_requisition_cancelled, {"requisition_id": first})
    assert status(ledger, branch) == {"balance": 1_000, "held": 600, "available": 400}
    assert scalar(ledger, "SELECT count(*) FROM transfers WHERE id = :i", i=domain.transfer_id("hold", waiting)) == 1


def test_a_float_opens_once_and_roles_are_enforced_in_the_service(ledger: Database) -> None:
    branch = open_float(ledger, 100)
    again = {"branch_id": branch, "branch_code": branch.upper(), "region_id": "r1", "amount": Money("KES", 100)}
    with pytest.raises(DomainError, match="already has a float"):
        run(ledger, service.open_float, again)
    with pytest.raises(DomainError, match="treasury"):
        run(ledger, service.open_float, {**again, "branch_id": "elsewhere"}, FINANCE)
    with pytest.raises(DomainError, match="Only treasury may request"):
        run(
            ledger,
            service.request_replenishment,
            {"branch_id": branch, "amount": Money("KES", 1), "comment": ""},
            FINANCE,
        )


def test_reversal_mirrors_a_posted_transfer_and_balances_follow(ledger: Database) -> None:
    branch = open_float(ledger, 2_000)
    rid = approved(ledger, branch, 300, START)
    run(ledger, service.on_payment_completed, {"requisition_id": rid, "payment_id": uuid.uuid4(), "provider": "cash"})
    with ledger.uow() as uow:
        reversal = service.reverse_transfer(uow, domain.transfer_id("post", rid), "paid to the wrong payee, refunded")
        uow.commit()
    assert reversal.kind == "reversal"
    assert status(ledger, branch) == {"balance": 2_000, "held": 0, "available": 2_000}
    balance = trial_balance(ledger)
    assert balance["balanced"] is True
    assert balance["cache_mismatches"] == []


def test_cached_totals_equal_the_totals_derived_from_transfers(ledger: Database) -> None:
    with ledger.uow() as uow:
        assert service.verify_balances(uow.session) == []
        accounts = uow.session.scalars(select(Account)).all()
        assert accounts
        # Break one cached total on purpose: the check must notice.
        victim = next(a for a in accounts if a.kind == "float")
        victim.debits_posted += 1
        uow.session.flush()
        assert service.verify_balances(uow.session) == [victim.code]
        uow.rollback()


def levels_update(uow: Any, branch: str, minutes: int, reorder: int | None = None) -> None:
    """Apply, in ``uow``, the gateway's update of a branch made ``minutes`` after START (its
    reorder level: ``reorder`` minor units, else ``minutes`` thousand)."""
    envelope = Envelope(
        type="BranchDirectoryUpdated",
        payload={},
        actor=SYSTEM_ACTOR,
        occurred_at=(START + timedelta(minutes=minutes)).isoformat(),
    )
    payload = {
        "branch_id": branch,
        "branch_code": branch.upper(),
        "region_id": "r1",
        "name": f"{branch} at {minutes}",
        "head_office": False,
        "reorder_level": Money("KES", minutes * 1_000 if reorder is None else reorder),
        "imprest": Money("KES", 1_000_000),
    }
    service.on_branch_directory_updated(uow, envelope, payload)


def committed_update(db: Database, branch: str, minutes: int, reorder: int | None = None) -> None:
    with db.uow() as uow:
        levels_update(uow, branch, minutes, reorder)
        uow.commit()


def waiting_for_a_lock(db: Database) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    return int(scalar(db, sql))


@pytest.mark.parametrize("kept_before", [False, True], ids=["first-update", "update-of-a-kept-branch"])
@pytest.mark.parametrize(("first", "second"), [(2, 1), (1, 2)], ids=["newer-first", "older-first"])
def test_of_two_updates_of_a_branch_applied_at_once_the_newer_stays(
    ledger: Database, kept_before: bool, first: int, second: int
) -> None:
    branch = open_float(ledger, 10_000)
    if kept_before:
        committed_update(ledger, branch, 0)
    errors: list[BaseException] = []

    def apply_second() -> None:
        try:
            committed_update(ledger, branch, second)
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)

    other = threading.Thread(target=apply_second)
    with ledger.uow() as holding:
        levels_update(holding, branch, first)
        other.start()
        wait_for(lambda: waiting_for_a_lock(ledger), 10, what="the second update to wait for the first")
        holding.commit()
    other.join()
    assert errors == []
    newer = max(first, second)
    kept = scalar(ledger, "SELECT reorder_level_minor FROM branch_levels WHERE branch_id = :b", b=branch)
    assert kept == newer * 1_000
    with ledger.uow() as uow:
        ids = uow.session.scalars(select(Account.id).where(Account.kind == "float", Account.branch_id == branch)).all()
        [snapshot] = service.account_snapshots(uow.session, ids)
    assert snapshot["float"]["reorder_level"] == {"minor_units": newer * 1_000, "currency": "KES"}


def test_an_update_that_waited_for_another_still_republishes_the_floats_it_changes_back(ledger: Database) -> None:
    """The kept levels are read under a lock: an update restoring levels that a concurrent one
    changed meanwhile compares with what that one kept, and re-publishes the branch's floats."""
    branch = open_float(ledger, 10_000)
    committed_update(ledger, branch, 1, reorder=5_000)
    touched: list[tuple[str, Any]] = []

    def restore() -> None:
        with ledger.uow() as uow:
            levels_update(uow, branch, 3, reorder=5_000)
            touched.extend(uow.session.info.get(TOUCHED, ()))
            uow.commit()

    other = threading.Thread(target=restore)
    with ledger.uow() as holding:
        levels_update(holding, branch, 2, reorder=7_000)
        other.start()
        wait_for(lambda: waiting_for_a_lock(ledger), 10, what="the restoring update to wait for the other")
        holding.commit()
    other.join()
    float_id = scalar(ledger, "SELECT id FROM accounts WHERE kind = 'float' AND branch_id = :b", b=branch)
    assert ("account", float_id) in touched
    assert scalar(ledger, "SELECT reorder_level_minor FROM branch_levels WHERE branch_id = :b", b=branch) == 5_000
