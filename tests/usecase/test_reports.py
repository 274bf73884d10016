"""The reports' figures, each checked against the services' own rows on seeded data: the
ledger's reports against its transfers (summed here, in the test, another way), the account
days kept with the transfers against their rebuild, approval turnaround against the steps,
the payment summary against the payments; each within the reader's scope."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.approval import reports as approval_reports
from services.approval.models import ApprovalCase, ApprovalStep
from services.ledger import cash, days, domain, reports, service
from services.ledger.models import Account, AccountDay, CashCount, Replenishment, Transfer
from services.payment import reports as payment_reports
from services.payment.models import Payment
from shared.contracts import catalog
from shared.contracts.envelope import Actor
from shared.messaging.errors import DomainError
from shared.messaging.reports import ReportQuery
from tests.factories import (
    ALICE,
    BOB,
    CAROL,
    FIONA,
    HQ,
    MARY,
    MSA_01,
    NBO_CBD,
    RITA,
    TOM,
    Branch,
    an_actor,
    command,
    event,
    float_funding,
    kes,
    payment_completed,
    replenishment_decision,
    replenishment_request,
    requisition_approved,
    requisition_closed,
)
from tests.usecase.conftest import Harness, load_payload

TODAY = datetime.now(UTC).date()
AUDITOR = an_actor("aud", "auditor", branches=[HQ])


def report(uc: Harness, name: str, actor: Actor = FIONA, service_name: str = "ledger", **params: Any) -> Any:
    """A report as ``<service>.run_report`` answers it (its body), for today unless told."""
    payload = {"report": name, **params}
    if name != "trial-balance":
        payload.setdefault("from_day", TODAY.isoformat())
        payload.setdefault("to_day", TODAY.isoformat())
    envelope = command(catalog.REPORT_QUERIES[service_name], payload, actor)
    handler = {"ledger": reports, "approval": approval_reports, "payment": payment_reports}[service_name]
    with uc.session() as session:
        reply = handler.run_report(session, envelope, load_payload(envelope))
    assert reply["status"] == 200, reply
    return reply["body"]


def rows(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return next(s["rows"] for s in body["sections"] if s["name"] == name)


def approve(uc: Harness, major: int, branch: Branch = NBO_CBD, category: str = "fuel") -> str:
    rid = str(uuid.uuid4())
    payload = requisition_approved(rid, branch=branch, amount=kes(major), category=category)
    uc.run(service.on_requisition_approved, event(catalog.REQUISITION_APPROVED, payload, BOB))
    return rid


def pay(uc: Harness, rid: str, major: int) -> None:
    uc.run(service.on_payment_completed, event(catalog.PAYMENT_COMPLETED, payment_completed(rid, kes(major))))


def seed_ledger(uc: Harness) -> None:
    """Two floats; requisitions held, paid, cancelled; a replenishment; a short cash count posted."""
    for branch, major in ((NBO_CBD, 50_000), (MSA_01, 20_000)):
        uc.run(service.open_float, command(catalog.OPEN_FLOAT, float_funding(branch, kes(major)), TOM))
    for major, category in ((1_200, "fuel"), (800, "travel"), (450, "fuel")):
        pay(uc, approve(uc, major, category=category), major)
    pay(uc, approve(uc, 3_000, MSA_01, "office_supplies"), 3_000)
    approve(uc, 700)  # held, not paid
    cancelled = approve(uc, 300, category="travel")
    uc.run(service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(cancelled)))
    asked = uc.run(
        service.request_replenishment, command(catalog.REQUEST_REPLENISHMENT, replenishment_request(MSA_01), TOM)
    )
    decision = replenishment_decision(asked["body"]["id"])
    uc.run(service.decide_replenishment, command(catalog.DECIDE_REPLENISHMENT, decision, FIONA))
    counted = {"branch_id": NBO_CBD.id, "currency": "KES", "denominations": {"1000": 47}, "comment": ""}
    short = uc.run(cash.record_cash_count, command(catalog.RECORD_CASH_COUNT, counted, BOB))["body"]
    decided = {"id": short["id"], "approve": True, "comment": "checked"}
    uc.run(cash.decide_variance, command(catalog.DECIDE_VARIANCE, decided, FIONA))
    over = {**counted, "denominations": {"1000": 48}}
    uc.run(cash.record_cash_count, command(catalog.RECORD_CASH_COUNT, over, BOB))  # pending


def truth(uc: Harness, until: datetime | None = None) -> dict[uuid.UUID, list[int]]:
    """Every account's (debits, credits) posted and pending, summed here from the transfers
    (those written before ``until``, if given)."""
    totals: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    written = select(Transfer) if until is None else select(Transfer).where(Transfer.created_at < until)
    for t in uc.scalars(written):
        posted, held = domain.movement_of(t.kind, t.pending, t.amount_minor)
        totals[t.debit_account_id][0] += posted
        totals[t.debit_account_id][2] += held
        totals[t.credit_account_id][1] += posted
        totals[t.credit_account_id][3] += held
    return totals


def accounts(uc: Harness) -> dict[str, Account]:
    return {a.code: a for a in uc.scalars(select(Account))}


# -- the ledger's reports ----------------------------------------------------------------


def test_the_trial_balance_at_each_date_of_a_history_is_its_transfers_up_to_it(ledger_uc: Harness) -> None:
    """Over a history of ten days: at a date near its start the days up to it are summed; near
    today the accounts' own totals less the days after it; both are the transfers up to it."""
    seed_ledger(ledger_uc)
    with ledger_uc.session() as session:  # the history spread over the last ten days, oldest first
        written = session.scalars(select(Transfer).order_by(Transfer.created_at, Transfer.id)).all()
        for n, transfer in enumerate(written):
            transfer.created_at -= timedelta(days=10 - 10 * n // len(written))
        for account in session.scalars(select(Account)):
            account.created_at -= timedelta(days=10)
        session.flush()
        days.rebuild_account_days(session)
        session.commit()
    for back in (11, 9, 7, 5, 2, 1, 0):
        at = TODAY - timedelta(days=back)
        listed = {r["code"]: r for r in rows(report(ledger_uc, "trial-balance", at=at.isoformat()), "accounts")}
        sums = truth(ledger_uc, until=datetime.combine(at + timedelta(days=1), datetime.min.time(), UTC))
        for code, account in accounts(ledger_uc).items():
            dp, cp, dh, ch = sums.get(account.id, [0, 0, 0, 0])
            row = listed[code] if back <= 10 else None
            figures = (0, 0, 0, 0) if row is None else tuple(row[k]["minor_units"] for k in FIGURE_KEYS)
            assert figures == (dp, cp, dh, ch), (back, code)


FIGURE_KEYS = ("debits", "credits", "debits_pending", "credits_pending")


def test_account_days_kept_with_the_transfers_equal_their_rebuild(ledger_uc: Harness) -> None:
    seed_ledger(ledger_uc)

    def kept(session: Any) -> list[tuple[Any, ...]]:
        return [
            (d.account_id, d.day, d.debits_posted, d.credits_posted, d.debits_pending, d.credits_pending)
            for d in session.scalars(select(AccountDay).order_by(AccountDay.account_id, AccountDay.day))
        ]

    with ledger_uc.session() as session:
        live = kept(session)
        assert live
        assert days.rebuild_account_days(session) == len(live)
        session.flush()
        assert kept(session) == live


def test_the_trial_balance_at_a_date_is_every_accounts_transfers_summed(ledger_uc: Harness) -> None:
    seed_ledger(ledger_uc)
    body = report(ledger_uc, "trial-balance", at=TODAY.isoformat())
    assert body["at"] == TODAY.isoformat()
    sums, by_code = truth(ledger_uc), accounts(ledger_uc)
    listed = rows(body, "accounts")
    assert {r["code"] for r in listed} == set(by_code)
    for row in listed:
        dp, cp, dh, ch = sums[by_code[row["code"]].id]
        figures = (row["debits"], row["credits"], row["balance"], row["debits_pending"], row["credits_pending"])
        assert tuple(f["minor_units"] for f in figures) == (dp, cp, dp - cp, dh, ch), row["code"]
    [total] = rows(body, "totals")
    assert total["balanced"] is True
    assert total["debits"] == total["credits"] == kes(sum(s[0] for s in sums.values()) // 100)
    # The day before anything moved, nothing had.
    before = report(ledger_uc, "trial-balance", at=(TODAY - timedelta(days=1)).isoformat())
    assert rows(before, "accounts") == []
    assert rows(before, "totals") == []
    # Days at the ends of the calendar are days like any other (nothing overflows).
    assert rows(report(ledger_uc, "trial-balance", at="9999-12-31"), "totals")[0]["balanced"] is True
    assert rows(report(ledger_uc, "spending", from_day="9999-12-31", to_day="9999-12-31"), "by_branch") == []
    assert rows(report(ledger_uc, "fund-health", from_day="0001-01-01", to_day="0001-01-01"), "days") == []


def test_spending_is_the_posted_expenses_by_branch_and_category(ledger_uc: Harness) -> None:
    seed_ledger(ledger_uc)
    expected: dict[tuple[str, str], int] = defaultdict(int)
    by_id = {a.id: a for a in accounts(ledger_uc).values()}
    for t in ledger_uc.scalars(select(Transfer).where(Transfer.pending.is_(False), Transfer.kind != "void")):
        debit, credit = by_id[t.debit_account_id], by_id[t.credit_account_id]
        if debit.kind == "expense" and credit.kind == "float":
            expected[(debit.branch_id or "", days.category_of(debit))] += t.amount_minor
    body = report(ledger_uc, "spending")
    got = {(r["branch"], r["category"]): r["spent"]["minor_units"] for r in rows(body, "by_branch_category")}
    assert (
        got
        == dict(expected)
        == {
            (NBO_CBD.id, "fuel"): 165_000,
            (NBO_CBD.id, "travel"): 80_000,
            (MSA_01.id, "office_supplies"): 300_000,
        }
    )
    by_category = {r["category"]: r["spent"]["minor_units"] for r in rows(body, "by_category")}
    assert by_category == {"fuel": 165_000, "travel": 80_000, "office_supplies": 300_000}
    fuel = report(ledger_uc, "spending", category="fuel")
    assert [r["category"] for r in rows(fuel, "by_branch_category")] == ["fuel"]
    # A branch manager of Mombasa sees Mombasa's alone.
    mombasa = report(ledger_uc, "spending", actor=MARY)
    assert {r["branch"] for r in rows(mombasa, "by_branch")} == {MSA_01.id}


def test_fund_health_shows_each_floats_balance_replenishments_and_days_below_its_reorder_level(
    ledger_uc: Harness,
) -> None:
    seed_ledger(ledger_uc)
    levels = {"reorder_level": kes(30_000), "imprest": kes(40_000)}
    ledger_uc.run(service.on_branch_directory_updated, event(catalog.BRANCH_DIRECTORY_UPDATED, _levels(MSA_01, levels)))
    body = report(ledger_uc, "fund-health", from_day=(TODAY - timedelta(days=2)).isoformat())
    sums, by_code = truth(ledger_uc), accounts(ledger_uc)
    floats = {r["branch"]: r for r in rows(body, "floats")}
    for branch in (NBO_CBD, MSA_01):
        dp, cp, _, held = sums[by_code[f"float:{branch.code}:KES"].id]  # a hold credits the float
        summary = floats[branch.id]
        assert summary["closing_balance"]["minor_units"] == dp - cp
        assert summary["opening_balance"]["minor_units"] == 0  # opened today
        [today] = [r for r in rows(body, "days") if r["branch"] == branch.id]  # nothing before it opened
        assert today["day"] == TODAY.isoformat()
        assert today["closing_available"]["minor_units"] == dp - cp - held
    moved = ledger_uc.scalars(
        select(Transfer.amount_minor).join(Replenishment, Replenishment.transfer_id == Transfer.id)
    )
    assert floats[MSA_01.id]["replenished"]["minor_units"] == sum(moved) == 1_000_000
    # Treasury's, approved; and the one proposed when the new level put the float below it.
    assert (floats[MSA_01.id]["replenishments_requested"], floats[MSA_01.id]["replenishments_approved"]) == (2, 1)
    assert floats[MSA_01.id]["reorder_level"] == kes(30_000)
    assert floats[MSA_01.id]["days_below_reorder_level"] == 1  # 27,000 available, below 30,000
    assert floats[NBO_CBD.id]["days_below_reorder_level"] == 0  # no level set


def test_fund_health_over_a_long_period_lists_a_balance_a_week_but_folds_every_day(ledger_uc: Harness) -> None:
    seed_ledger(ledger_uc)
    daily = report(ledger_uc, "fund-health", from_day=(TODAY - timedelta(days=91)).isoformat())
    weekly = report(ledger_uc, "fund-health", from_day=(TODAY - timedelta(days=200)).isoformat())
    titles = [next(s["title"] for s in body["sections"] if s["name"] == "days") for body in (daily, weekly)]
    assert titles == ["Closing balance by day", "Closing balance by week (its last day)"]
    # The floats opened today: the last day is listed either way, and the summaries agree.
    assert {r["day"] for r in rows(weekly, "days")} == {TODAY.isoformat()}
    assert rows(weekly, "floats") == rows(daily, "floats")


def _levels(branch: Branch, levels: dict[str, Any]) -> dict[str, Any]:
    from tests.factories import branch_directory_updated

    return branch_directory_updated(branch, **levels)


def test_variance_analysis_counts_shortages_overages_and_what_was_posted(ledger_uc: Harness) -> None:
    seed_ledger(ledger_uc)
    body = report(ledger_uc, "variance-analysis")
    [branch] = rows(body, "by_branch")
    counts = ledger_uc.scalars(select(CashCount))
    posted = ledger_uc.scalars(select(Transfer.amount_minor).join(CashCount, CashCount.transfer_id == Transfer.id))
    assert branch["branch"] == NBO_CBD.id
    assert (branch["counts"], branch["shortages"], branch["overages"]) == (len(counts), 1, 1)
    assert (branch["approved"], branch["pending"], branch["rejected"]) == (1, 1, 0)
    short = -sum(c.variance_minor for c in counts if c.variance_minor < 0)
    assert branch["shortage"]["minor_units"] == short
    assert branch["posted"]["minor_units"] == -sum(posted)
    assert [r["status"] for r in rows(body, "counts")] == ["approved", "pending"]
    assert report(ledger_uc, "variance-analysis", actor=MARY)["sections"][0]["rows"] == []


def test_the_general_ledger_pages_through_every_transfer_once_in_order(ledger_uc: Harness) -> None:
    seed_ledger(ledger_uc)
    every = [str(t.id) for t in ledger_uc.scalars(select(Transfer).order_by(Transfer.created_at, Transfer.id))]
    seen: list[str] = []
    after = None
    while True:
        body = report(ledger_uc, "general-ledger", limit=3, **({"after": after} if after else {}))
        page = rows(body, "transfers")
        assert len(page) <= 3
        seen += [r["id"] for r in page]
        after = body["next"]
        if after is None:
            break
    assert seen == every
    total = sum(t.amount_minor for t in ledger_uc.scalars(select(Transfer)))
    whole = report(ledger_uc, "general-ledger", limit=5000)
    assert sum(r["amount"]["minor_units"] for r in rows(whole, "transfers")) == total
    # The ids are written by the database as str(uuid) writes them, '' where there is none.
    ids = {r["id"]: (r["resolves"], r["reverses"], r["requisition_id"]) for r in rows(whole, "transfers")}
    assert ids == {
        str(t.id): tuple(str(i) if i else "" for i in (t.pending_id, t.reversal_of, t.requisition_id))
        for t in ledger_uc.scalars(select(Transfer))
    }
    assert any(resolves for resolves, _, _ in ids.values())
    assert any(rid for _, _, rid in ids.values())
    mombasa = rows(report(ledger_uc, "general-ledger", actor=MARY), "transfers")
    assert mombasa
    assert all("MSA-01" in r["debit"] + r["credit"] for r in mombasa)
    fuel = rows(report(ledger_uc, "general-ledger", category="fuel"), "transfers")
    assert fuel
    assert all("expense:fuel:" in r["debit"] + r["credit"] for r in fuel)


def test_a_bad_cursor_is_refused_and_a_requester_reads_no_report(ledger_uc: Harness) -> None:
    envelope = command(catalog.REPORT_QUERIES["ledger"], {"report": "general-ledger", "after": "nonsense"}, FIONA)
    with ledger_uc.session() as session, pytest.raises(DomainError) as refused:
        reports.run_report(session, envelope, load_payload(envelope))
    assert (refused.value.status, refused.value.code) == (400, "bad-cursor")
    envelope = command(catalog.REPORT_QUERIES["ledger"], {"report": "spending"}, ALICE)
    with ledger_uc.session() as session, pytest.raises(DomainError) as refused:
        reports.run_report(session, envelope, load_payload(envelope))
    assert refused.value.status == 403


# -- approval turnaround ------------------------------------------------------------------


def _case(uc: Harness, branch: Branch, tier: str, hours: list[float], escalated: int | None = None) -> None:
    """A closed case whose steps each took the hours given (the ``escalated``th one escalated)."""
    opened = datetime.now(UTC) - timedelta(hours=sum(hours) + 1)
    case = ApprovalCase(
        id=uuid.uuid4(), requisition_id=uuid.uuid4(), voucher_no="V-1", branch_id=branch.id,
        region_id=branch.region_id, origin="branch", requester_id=ALICE.user_id, amount_minor=100_00,
        currency="KES", category="fuel", urgent=False, tier=tier, policy_version=1, status="approved",
        opened_at=opened, closed_at=opened + timedelta(hours=sum(hours)),
    )  # fmt: skip
    at = opened
    for seq, took in enumerate(hours):
        step = ApprovalStep(
            revision=1, seq=seq, role=("branch_manager", "regional_manager")[seq % 2], kind="approve",
            status="done", activated_at=at, decided_at=at + timedelta(hours=took), decision="approve",
            sla_escalated=seq == escalated,
        )  # fmt: skip
        case.steps.append(step)
        at += timedelta(hours=took)
    with uc.session() as session:
        session.add(case)
        session.commit()


def test_approval_turnaround_is_the_steps_hours_by_tier_and_role(approval_uc: Harness) -> None:
    for hours in ([1.0, 5.0], [2.0, 30.0], [3.0, 4.0], [10.0, 1.0]):
        _case(approval_uc, NBO_CBD, "T2", hours, escalated=1 if hours[1] > 24 else None)
    _case(approval_uc, MSA_01, "T1", [0.5])
    since = (TODAY - timedelta(days=3)).isoformat()
    body = report(approval_uc, "approval-turnaround", service_name="approval", from_day=since)
    steps = {(r["tier"], r["role"]): r for r in rows(body, "steps")}
    managers = steps[("T2", "branch_manager")]
    assert (managers["steps"], managers["median_hours"], managers["p90_hours"], managers["escalated"]) == (
        4, 2.5, 10.0, 0,
    )  # fmt: skip
    regional = steps[("T2", "regional_manager")]
    assert (regional["median_hours"], regional["p90_hours"], regional["escalated"]) == (4.5, 30.0, 1)
    cases = {r["tier"]: r for r in rows(body, "cases")}
    assert (cases["T2"]["cases"], cases["T2"]["escalated"], cases["T1"]["median_hours"]) == (4, 1, 0.5)
    rita_view = report(approval_uc, "approval-turnaround", actor=RITA, service_name="approval", from_day=since)
    assert {r["tier"] for r in rows(rita_view, "cases")} == {"T2"}  # Nairobi's, not Mombasa's


def test_the_turnaround_postgresql_computes_is_the_one_python_computes_from_the_rows(approval_uc: Harness) -> None:
    """The figures PostgreSQL computes (its percentiles, its escalation count) against Python's
    from the same rows (the embedded SQLite path): odd and even counts, ties, a step escalated
    for a reason, a case reopened (open, its earlier steps decided in the period), and a case
    closed before the period, which counts nowhere."""
    hours = [[1.0, 5.0], [2.0, 30.0], [3.0, 4.0], [10.0, 1.0], [0.25, 7.5], [3.0, 3.0], [6.0, 0.5]]
    for n, took in enumerate(hours):
        _case(approval_uc, (NBO_CBD, MSA_01)[n % 2], ("T1", "T2", "T3")[n % 3], took, escalated=n % 4 or None)
    with approval_uc.session() as session:
        cases = session.scalars(select(ApprovalCase).order_by(ApprovalCase.opened_at)).all()
        for step in cases[0].steps:
            step.escalation_reason = "sent up: the amount is unusual"
        cases[1].closed_at, cases[1].status = None, "open"  # reopened for a new revision
        cases[2].closed_at = cases[2].opened_at = datetime.now(UTC) - timedelta(days=40)
        for step in cases[2].steps:
            step.activated_at = step.decided_at = cases[2].closed_at - timedelta(hours=1)
        session.commit()
    query = ReportQuery(FIONA, TODAY - timedelta(days=30), TODAY)
    with approval_uc.session() as session:
        in_sql = approval_reports.steps_in_sql(session, query), approval_reports.cases_in_sql(session, query)
        in_python = approval_reports.steps_in_python(session, query), approval_reports.cases_in_python(session, query)
    assert _rounded(in_sql) == _rounded(in_python)
    steps, cases_closed = in_sql
    assert sum(n for _key, n, *_ in steps) == 12  # seven cases' two steps, less the two decided before the period
    assert sum(n for _key, n, *_ in cases_closed) == 5  # the reopened one and the old one not closed in it
    assert sum(escalated for *_, escalated in steps) >= 2


def _rounded(figures: Any) -> Any:
    return [[(key, n, round(median, 9), round(p90, 9), esc) for key, n, median, p90, esc in part] for part in figures]


# -- payment summary ----------------------------------------------------------------------


def test_the_payment_summary_counts_and_sums_the_payments_by_method_status_and_branch(payment_uc: Harness) -> None:
    now = datetime.now(UTC)
    made = [(NBO_CBD, "cash", "completed", 1_000), (NBO_CBD, "cash", "completed", 2_500),
            (NBO_CBD, "mobile_money", "failed", 700), (MSA_01, "bank", "processing", 4_000)]  # fmt: skip
    with payment_uc.session() as session:
        for branch, method, state, major in made:
            session.add(
                Payment(
                    id=uuid.uuid4(),
                    requisition_id=uuid.uuid4(),
                    branch_id=branch.id,
                    region_id=branch.region_id,
                    amount_minor=major * 100,
                    currency="KES",
                    payee_name="P",
                    payee_method=method,
                    payee_account_ref="",
                    state=state,
                    executions=1,
                    attempts=1,
                    executor_id=TOM.user_id,
                    executor_name="tom",
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
    body = report(payment_uc, "payment-summary", actor=CAROL, service_name="payment")
    detail = {(r["branch"], r["method"], r["status"]): (r["payments"], r["amount"]) for r in rows(body, "by_branch")}
    assert detail == {
        (NBO_CBD.id, "cash", "completed"): (2, kes(3_500)),
        (NBO_CBD.id, "mobile_money", "failed"): (1, kes(700)),
        (MSA_01.id, "bank", "processing"): (1, kes(4_000)),
    }
    by_status = {r["status"]: r["amount"]["minor_units"] for r in rows(body, "by_status")}
    assert by_status == {"completed": 350_000, "failed": 70_000, "processing": 400_000}
    by_method = {r["method"]: r["payments"] for r in rows(body, "by_method")}
    assert by_method == {"cash": 2, "mobile_money": 1, "bank": 1}
    mary = report(payment_uc, "payment-summary", actor=MARY, service_name="payment")
    assert {r["branch"] for r in rows(mary, "by_branch")} == {MSA_01.id}
    auditor = report(payment_uc, "payment-summary", actor=AUDITOR, service_name="payment")
    assert len(rows(auditor, "by_branch")) == 3
