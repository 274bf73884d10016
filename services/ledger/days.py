"""Each float's days, kept with its transfers: what came in, what went out by category, and
where the balance stood after the day's last transfer (``FloatDay``); and every account's days,
what its transfers added to its four totals each day (``AccountDay``).

The dashboard reads thirty float days per float (projected to the gateway) rather than the
transfers: its history and trailing spend cost the same at a thousand transfers or a million.
The reports read the same days (fund health, spending), and the trial balance at a date sums
the account days up to it, never the transfers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from services.ledger import domain
from services.ledger.levels import totals_of
from services.ledger.models import Account, AccountDay, FloatDay, Transfer
from shared.messaging.snapshots import touch

# Where a float's money comes from, or goes back to, other than spending: the bank (funding,
# replenishment) and the over/short account (a cash count's approved variance).
MONEY_IN = ("bank", "over_short")


def day_id(account_id: Any, day: date) -> str:
    return f"{account_id}:{day.isoformat()}"


def category_of(expense: Account) -> str:
    """An expense account's category (its code is ``expense:<category>:<branch>:<currency>``)."""
    parts = expense.code.split(":")
    return parts[1] if len(parts) >= 4 and parts[0] == "expense" else "other"


def record(session: Session, transfer: Transfer, debit: Account, credit: Account, at: datetime) -> None:
    """Fold a booked transfer into the day of each account it moved, and of each float (the
    accounts are locked, so no two transactions write one account's day at once)."""
    posted, held = domain.movement_of(transfer.kind, transfer.pending, transfer.amount_minor)
    debit_day = _account_day(session, debit, at.date())
    debit_day.debits_posted += posted
    debit_day.debits_pending += held
    credit_day = _account_day(session, credit, at.date())
    credit_day.credits_posted += posted
    credit_day.credits_pending += held
    for account, other, sign in ((credit, debit, 1), (debit, credit, -1)):
        if account.kind != "float":
            continue
        row = _day(session, account, at.date())
        if other.kind in MONEY_IN:
            row.funded_minor += -sign * posted
        elif other.kind == "expense" and posted:
            row.spent_minor += sign * posted
            category = category_of(other)
            spent = dict(row.spent_by_category or {})
            spent[category] = spent.get(category, 0) + sign * posted
            row.spent_by_category = spent
        totals = totals_of(account)
        row.closing_balance_minor = totals.balance
        row.closing_available_minor = totals.available
        touch(session, "float_day", row.id)


def _account_day(session: Session, account: Account, day: date) -> AccountDay:
    row = session.get(AccountDay, (account.id, day))
    if row is None:
        row = AccountDay(
            account_id=account.id, day=day, debits_posted=0, credits_posted=0, debits_pending=0, credits_pending=0
        )
        session.add(row)
    return row


def _day(session: Session, account: Account, day: date) -> FloatDay:
    key = day_id(account.id, day)
    row = session.get(FloatDay, key)
    if row is None:
        row = FloatDay(
            id=key,
            account_id=account.id,
            day=day,
            branch_id=account.branch_id or "",
            region_id=account.region_id or "",
            currency=account.currency,
            funded_minor=0,
            spent_minor=0,
            spent_by_category={},
            closing_balance_minor=0,
            closing_available_minor=0,
        )
        session.add(row)
    return row


def float_day_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Float days as the gateway projects them."""
    return [
        {
            "id": d.id,
            "branch_id": d.branch_id,
            "region_id": d.region_id,
            "currency": d.currency,
            "day": d.day.isoformat(),
            "funded_minor": d.funded_minor,
            "spent_minor": d.spent_minor,
            "closing_balance_minor": d.closing_balance_minor,
            "closing_available_minor": d.closing_available_minor,
            "body": {"spent_by_category": dict(d.spent_by_category or {})},
        }
        for d in session.scalars(select(FloatDay).where(FloatDay.id.in_([str(i) for i in ids])))
    ]


# Every float's days from its transfers (PostgreSQL): the same arithmetic as :func:`record`,
# in one statement, for a ledger filled without it (a bulk load, or an upgrade).
REBUILD_SQL = """
WITH sides AS (
    SELECT t.*, t.debit_account_id AS float_id, t.credit_account_id AS other_id, 1 AS sign
    FROM transfers t JOIN accounts f ON f.id = t.debit_account_id WHERE f.kind = 'float'
    UNION ALL
    SELECT t.*, t.credit_account_id, t.debit_account_id, -1
    FROM transfers t JOIN accounts f ON f.id = t.credit_account_id WHERE f.kind = 'float'
),
moves AS (
    SELECT s.float_id, (s.created_at AT TIME ZONE 'UTC')::date AS day, o.kind AS other_kind,
           CASE WHEN o.kind = 'expense' THEN split_part(o.code, ':', 2) END AS category,
           CASE WHEN s.pending OR s.kind = 'void' THEN 0 ELSE s.sign * s.amount_minor END AS posted,
           CASE WHEN s.sign = -1 THEN (CASE WHEN s.pending THEN s.amount_minor ELSE 0 END)
                - (CASE WHEN s.kind IN ('post', 'void') THEN s.amount_minor ELSE 0 END) ELSE 0 END AS held
    FROM sides s JOIN accounts o ON o.id = s.other_id
),
by_day AS (
    SELECT float_id, day,
           sum(CASE WHEN other_kind IN ('bank', 'over_short') THEN posted ELSE 0 END) AS funded,
           sum(CASE WHEN other_kind = 'expense' THEN -posted ELSE 0 END) AS spent,
           sum(posted) AS moved, sum(held) AS held
    FROM moves GROUP BY float_id, day
),
by_category AS (
    SELECT float_id, day, jsonb_object_agg(category, spent) AS spent_by_category
    FROM (SELECT float_id, day, category, sum(-posted) AS spent FROM moves
          WHERE category IS NOT NULL GROUP BY float_id, day, category HAVING sum(posted) <> 0) c
    GROUP BY float_id, day
)
INSERT INTO float_days (id, account_id, day, branch_id, region_id, currency, funded_minor, spent_minor,
                        spent_by_category, closing_balance_minor, closing_available_minor)
SELECT d.float_id::text || ':' || d.day::text, d.float_id, d.day, coalesce(a.branch_id, ''),
       coalesce(a.region_id, ''), a.currency, d.funded, d.spent, coalesce(c.spent_by_category, '{}'::jsonb),
       sum(d.moved) OVER w, sum(d.moved) OVER w - sum(d.held) OVER w
FROM by_day d JOIN accounts a ON a.id = d.float_id
LEFT JOIN by_category c ON c.float_id = d.float_id AND c.day = d.day
WINDOW w AS (PARTITION BY d.float_id ORDER BY d.day)
"""


def rebuild(session: Session) -> int:
    """Every float's days again from the transfers (PostgreSQL); how many days there are."""
    session.execute(delete(FloatDay))
    return int(session.execute(text(REBUILD_SQL)).rowcount or 0)


# Every account's days from its transfers (PostgreSQL): the posting rule of
# ``domain.movement_of`` in SQL (a hold is pending; a post or void releases its hold's amount; a
# void posts nothing), summed per side, account and UTC day. For a ledger filled without
# :func:`record` (a bulk load, or an upgrade): run it after the transfers are in.
ACCOUNT_DAYS_REBUILD_SQL = """
WITH moves AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, debit_account_id, credit_account_id,
           CASE WHEN pending OR kind = 'void' THEN 0 ELSE amount_minor END AS posted,
           (CASE WHEN pending THEN amount_minor ELSE 0 END)
           - (CASE WHEN kind IN ('post', 'void') THEN amount_minor ELSE 0 END) AS held
    FROM transfers
),
sides AS (
    SELECT debit_account_id AS account_id, day, posted AS dp, 0 AS cp, held AS dh, 0 AS ch FROM moves
    UNION ALL
    SELECT credit_account_id, day, 0, posted, 0, held FROM moves
)
INSERT INTO account_days (account_id, day, debits_posted, credits_posted, debits_pending, credits_pending)
SELECT account_id, day, sum(dp), sum(cp), sum(dh), sum(ch) FROM sides GROUP BY account_id, day
"""


def rebuild_account_days(session: Session) -> int:
    """Every account's days again from the transfers (PostgreSQL); how many days there are."""
    session.execute(delete(AccountDay))
    return int(session.execute(text(ACCOUNT_DAYS_REBUILD_SQL)).rowcount or 0)
