"""The reports the ledger computes from its own tables (``ledger.run_report``): fund health,
variance analysis, spending, the trial balance at a date and the general ledger export.

None of them reads every transfer. Fund health and spending read the floats' days
(``FloatDay``), the trial balance the accounts' days (``AccountDay``), both kept with each
transfer in its transaction and equal to their rebuild from the transfers (tested); variance
analysis reads the cash counts and the transfers that posted them; the general ledger export
reads one page of transfers by ``(created_at, id)``, an index's order. So each is as current
as the ledger itself, and costs the same at a thousand transfers or a million.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from services.ledger import domain
from services.ledger.levels import branch_levels
from services.ledger.models import Account, AccountDay, CashCount, FloatDay, Replenishment, Transfer
from shared.contracts import reports as rp
from shared.contracts.roles import GLOBAL_ROLES
from shared.db.scope import in_scope
from shared.db.types import uuid_text
from shared.messaging.errors import DomainError
from shared.messaging.reports import Builder, ReportQuery, after_day, report_handler

Row = dict[str, Any]
Query = ReportQuery
money, column, section = rp.money, rp.column, rp.section


def _accounts(query: Query, account: Any = Account) -> ColumnElement[bool]:
    """The accounts a query covers: in the actor's scope, of the branch when one is named."""
    clause = in_scope(query.actor, account.branch_id, account.region_id)
    if query.branch_id is not None:
        clause = and_(clause, account.branch_id == query.branch_id)
    return clause


# -- fund health ------------------------------------------------------------------------


@dataclass
class FloatHealth:
    """One float over the period, folded day by day."""

    account: Account
    reorder_level: int | None
    balance: int | None = None
    available: int | None = None
    opening: int | None = None
    lowest: int | None = None
    funded: int = 0
    spent: int = 0
    below: int = 0
    branch_id: str | None = field(init=False)
    currency: str = field(init=False)

    def __post_init__(self) -> None:
        # Read once: an ORM attribute costs more than the rest of a day's step.
        self.branch_id, self.currency = self.account.branch_id, self.account.currency

    def step(self, day: date, kept: DayFigures | None) -> Row | None:
        """The float's row for ``day`` (its days carried forward); None before it had money."""
        funded = spent = 0
        if kept is not None:
            funded, spent, self.balance, self.available = kept
        if self.balance is None or self.available is None:
            return None
        if self.opening is None:  # opened in the period: the balance before its first day's moves
            self.opening = self.balance - funded + spent
        self.lowest = self.balance if self.lowest is None else min(self.lowest, self.balance)
        self.funded += funded
        self.spent += spent
        below = self.reorder_level is not None and self.available < self.reorder_level
        self.below += below
        currency = self.currency
        return {
            "branch": self.branch_id,
            "currency": currency,
            "day": day.isoformat(),
            "closing_balance": money(self.balance, currency),
            "closing_available": money(self.available, currency),
            "funded": money(funded, currency),
            "spent": money(spent, currency),
            "below_reorder_level": below,
        }


def _floats(session: Session, query: Query) -> list[Account]:
    return list(
        session.scalars(
            select(Account).where(Account.kind == "float", _accounts(query)).order_by(Account.branch_code, Account.code)
        )
    )


# A float's day: funded, spent, closing balance, closing available (minor units).
DayFigures = tuple[int, int, int, int]


def _days_in(session: Session, ids: list[Any], query: Query) -> dict[Any, dict[date, DayFigures]]:
    """The floats' days of the period, by float and day: tuples of their figures (not ORM
    objects, which cost ten times as much to load for a year of sixty floats, nor rows, read by
    name), fetched at once."""
    d = FloatDay.__table__.c
    rows = session.execute(
        select(
            d.account_id, d.day, d.funded_minor, d.spent_minor, d.closing_balance_minor, d.closing_available_minor
        ).where(d.account_id.in_(ids), d.day >= query.start.date(), d.day < query.end.date())
    ).all()
    found: dict[Any, dict[date, DayFigures]] = {}
    for account, day, funded, spent, balance, available in rows:
        found.setdefault(account, {})[day] = (funded, spent, balance, available)
    return found


def _days_before(session: Session, ids: list[Any], before: date) -> dict[Any, FloatDay]:
    """Each float's last day before the period (where its balance stood when the period began):
    one look down its index per float, rather than every earlier day grouped."""
    d, earlier = FloatDay, aliased(FloatDay)
    last = (
        select(func.max(earlier.day))
        .where(earlier.account_id == Account.id, earlier.day < before)
        .correlate(Account)
        .scalar_subquery()
    )
    lasts = select(Account.id.label("account_id"), last.label("day")).where(Account.id.in_(ids)).subquery()
    rows = session.scalars(select(d).join(lasts, and_(d.account_id == lasts.c.account_id, d.day == lasts.c.day)))
    return {row.account_id: row for row in rows}


def _replenishments(session: Session, floats: list[Account], query: Query) -> dict[tuple[str, str], dict[str, int]]:
    """Per (branch, currency): the replenishments asked for in the period, those approved, and
    the money the approved ones moved (the ledger's transfers, not the requests' amounts)."""
    moved = aliased(Transfer)
    rows = session.execute(
        select(Replenishment.branch_id, Replenishment.currency, Replenishment.status, moved.amount_minor)
        .outerjoin(moved, moved.id == Replenishment.transfer_id)
        .where(
            Replenishment.branch_id.in_({a.branch_id for a in floats}),
            Replenishment.requested_at >= query.start,
            Replenishment.requested_at < query.end,
        )
    ).all()
    found: dict[tuple[str, str], dict[str, int]] = {}
    for branch_id, currency, status, amount in rows:
        tally = found.setdefault((branch_id, currency), {"requested": 0, "approved": 0, "moved": 0})
        tally["requested"] += 1
        if status == "approved":
            tally["approved"] += 1
            tally["moved"] += int(amount or 0)
    return found


def _period_days(query: Query) -> list[date]:
    last = min(query.to_day or date.today(), datetime.now(UTC).date())
    first = query.from_day or last
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def fund_health(session: Session, query: Query) -> dict[str, Any]:
    """Each float's closing balance day by day, its days below the reorder level, its money in
    and out, and the replenishments asked for and approved in the period."""
    floats = _floats(session, query)
    ids = [a.id for a in floats]
    levels = branch_levels(session, {a.branch_id for a in floats if a.branch_id})
    kept = _days_in(session, ids, query)
    before = _days_before(session, ids, query.start.date())
    days = _period_days(query)
    shown = _shown_days(days)
    day_rows: list[Row] = []
    summaries: list[Row] = []
    asked = _replenishments(session, floats, query)
    for account in floats:
        level = domain.levels_for(levels.get(account.branch_id or "", domain.NO_LEVELS), account.currency)
        health = _health(account, level, before.get(account.id))
        day_rows += _folded(health, days, shown, kept.get(account.id, {}))
        summaries.append(_float_summary(health, asked.get((account.branch_id or "", account.currency), {})))
    by = "day" if len(shown) == len(days) else "week (its last day)"
    return {
        "sections": [
            section("floats", "Floats over the period", FLOAT_COLUMNS, summaries),
            section("days", f"Closing balance by {by}", DAY_COLUMNS, day_rows),
        ]
    }


# Over a longer period the balances are listed a week at a time (each Sunday and the last day):
# a year of sixty floats is 3,000 rows to read rather than 22,000.
DAILY_UP_TO_DAYS = 92


def _folded(health: FloatHealth, days: list[date], shown: set[date], kept: dict[date, DayFigures]) -> list[Row]:
    """Every day of the period folded into the float's health (the days below its level); the
    rows of the days shown."""
    rows = []
    for day in days:
        row = health.step(day, kept.get(day))
        if row is not None and day in shown:
            rows.append(row)
    return rows


def _shown_days(days: list[date]) -> set[date]:
    if len(days) <= DAILY_UP_TO_DAYS:
        return set(days)
    return {d for d in days if d.isoweekday() == 7} | set(days[-1:])


def _health(account: Account, level: domain.Levels, prior: FloatDay | None) -> FloatHealth:
    """A float's fold, starting where its balance stood when the period began (if it was open)."""
    health = FloatHealth(account, level.reorder_level.minor_units if level.reorder_level else None)
    if prior is not None:
        health.balance, health.available = prior.closing_balance_minor, prior.closing_available_minor
        health.opening = prior.closing_balance_minor
    return health


def _float_summary(health: FloatHealth, asked: dict[str, int]) -> Row:
    currency = health.account.currency

    def amount(minor: int | None) -> dict[str, Any] | None:
        return None if minor is None else money(minor, currency)

    return {
        "branch": health.account.branch_id,
        "currency": currency,
        "opening_balance": amount(health.opening),
        "closing_balance": amount(health.balance),
        "lowest_balance": amount(health.lowest),
        "reorder_level": amount(health.reorder_level),
        "days_below_reorder_level": health.below,
        "funded": money(health.funded, currency),
        "spent": money(health.spent, currency),
        "replenishments_requested": asked.get("requested", 0),
        "replenishments_approved": asked.get("approved", 0),
        "replenished": money(asked.get("moved", 0), currency),
    }


FLOAT_COLUMNS = [
    column("branch", "Branch", "branch"),
    column("currency", "Currency"),
    column("opening_balance", "Opening balance", "money"),
    column("closing_balance", "Closing balance", "money"),
    column("lowest_balance", "Lowest balance", "money"),
    column("reorder_level", "Reorder level", "money"),
    column("days_below_reorder_level", "Days below reorder level", "int"),
    column("funded", "Money in", "money"),
    column("spent", "Spent", "money"),
    column("replenishments_requested", "Replenishments asked", "int"),
    column("replenishments_approved", "Replenishments approved", "int"),
    column("replenished", "Replenished", "money"),
]
DAY_COLUMNS = [
    column("branch", "Branch", "branch"),
    column("currency", "Currency"),
    column("day", "Day", "date"),
    column("closing_balance", "Closing balance", "money"),
    column("closing_available", "Closing available", "money"),
    column("funded", "Funded", "money"),
    column("spent", "Spent", "money"),
    column("below_reorder_level", "Below reorder level", "bool"),
]


# -- spending ---------------------------------------------------------------------------


def _float_days_in(session: Session, query: Query) -> Iterable[tuple[str, str, dict[str, int]]]:
    """(branch, currency, spent by category) of each float day of the period in scope."""
    return session.execute(
        select(FloatDay.branch_id, FloatDay.currency, FloatDay.spent_by_category).where(
            FloatDay.day >= query.start.date(),
            FloatDay.day < query.end.date(),
            in_scope(query.actor, FloatDay.branch_id, FloatDay.region_id),
            FloatDay.branch_id == query.branch_id if query.branch_id else true(),
        )
    ).tuples()


def _spent_in_sql(session: Session, query: Query) -> dict[tuple[str, str, str], int]:
    """(branch, category, currency) -> spent, summed by PostgreSQL over the days' JSON."""
    scope = in_scope(query.actor, FloatDay.branch_id, FloatDay.region_id)
    where = [FloatDay.day >= query.start.date(), FloatDay.day < query.end.date(), scope]
    if query.branch_id:
        where.append(FloatDay.branch_id == query.branch_id)
    spent = func.jsonb_each_text(FloatDay.spent_by_category).table_valued("key", "value").alias("spent")
    statement = (
        select(FloatDay.branch_id, spent.c.key, FloatDay.currency, func.sum(spent.c.value.cast(BigInteger)))
        .select_from(FloatDay)
        .join(spent, true())
        .where(*where, spent.c.key == query.category if query.category else true())
        .group_by(FloatDay.branch_id, spent.c.key, FloatDay.currency)
    )
    return {(b, c, cur): int(v) for b, c, cur, v in session.execute(statement)}


def _spent(session: Session, query: Query) -> dict[tuple[str, str, str], int]:
    """(branch, category, currency) -> spent over the period's float days in scope."""
    if session.get_bind().dialect.name == "postgresql":
        return _spent_in_sql(session, query)
    totals: dict[tuple[str, str, str], int] = {}
    for branch_id, currency, by_category in _float_days_in(session, query):
        for category, spent in (by_category or {}).items():
            if query.category is None or category == query.category:
                key = (branch_id, category, currency)
                totals[key] = totals.get(key, 0) + int(spent)
    return totals


def spending(session: Session, query: Query) -> dict[str, Any]:
    """Money paid out of the floats in the period (posted, reversals netted), by branch and category."""
    totals = _spent(session, query)
    by_branch: dict[tuple[str, str], int] = {}
    by_category: dict[tuple[str, str], int] = {}
    for (branch_id, category, currency), spent in totals.items():
        by_branch[(branch_id, currency)] = by_branch.get((branch_id, currency), 0) + spent
        by_category[(category, currency)] = by_category.get((category, currency), 0) + spent
    rows = [
        {"branch": b, "category": c, "currency": cur, "spent": money(v, cur)}
        for (b, c, cur), v in sorted(totals.items())
    ]
    branch_col, currency_col, spent_col = (
        column("branch", "Branch", "branch"),
        column("currency", "Currency"),
        column("spent", "Spent", "money"),
    )
    category_col = column("category", "Category")
    return {
        "sections": [
            section(
                "by_branch_category",
                "By branch and category",
                [branch_col, category_col, currency_col, spent_col],
                rows,
            ),
            section(
                "by_category",
                "By category",
                [category_col, currency_col, spent_col],
                [
                    {"category": c, "currency": cur, "spent": money(v, cur)}
                    for (c, cur), v in sorted(by_category.items())
                ],
            ),
            section(
                "by_branch",
                "By branch",
                [branch_col, currency_col, spent_col],
                [{"branch": b, "currency": cur, "spent": money(v, cur)} for (b, cur), v in sorted(by_branch.items())],
            ),
        ]
    }


# -- variance analysis ------------------------------------------------------------------


def _tally(row: Row, count: CashCount, posted: int | None) -> None:
    row["counts"] += 1
    if count.variance_minor < 0:
        row["shortages"] += 1
        row["shortage_minor"] += -count.variance_minor
    elif count.variance_minor > 0:
        row["overages"] += 1
        row["overage_minor"] += count.variance_minor
    else:
        row["balanced"] += 1
    if count.status in ("approved", "rejected", "pending"):
        row[count.status] += 1
    if posted:  # what the ledger posted for it: over (+) or short (-), as the variance is
        row["posted_minor"] += posted if count.variance_minor > 0 else -posted


def variance_analysis(session: Session, query: Query) -> dict[str, Any]:
    """The cash counts of the period by branch: shortages and overages, how many were approved,
    rejected or still wait, and the money the ledger posted for them; and each count."""
    posting = aliased(Transfer)
    counts = session.execute(
        select(CashCount, posting.amount_minor)
        .outerjoin(posting, posting.id == CashCount.transfer_id)
        .where(
            CashCount.counted_at >= query.start,
            CashCount.counted_at < query.end,
            in_scope(query.actor, CashCount.branch_id, CashCount.region_id),
            CashCount.branch_id == query.branch_id if query.branch_id else true(),
        )
        .order_by(CashCount.counted_at, CashCount.id)
    ).all()
    by_branch: dict[tuple[str, str], Row] = {}
    listed: list[Row] = []
    for count, posted in counts:
        blank = dict.fromkeys(TALLIES, 0)
        _tally(by_branch.setdefault((count.branch_id, count.currency), blank), count, posted)
        listed.append(_count_row(count))
    rows = [_branch_variance(b, cur, tally) for (b, cur), tally in sorted(by_branch.items())]
    return {
        "sections": [
            section("by_branch", "Cash counts by branch", VARIANCE_COLUMNS, rows),
            section("counts", "Cash counts", COUNT_COLUMNS, listed),
        ]
    }


TALLIES = (
    "counts",
    "balanced",
    "shortages",
    "shortage_minor",
    "overages",
    "overage_minor",
    "approved",
    "rejected",
    "pending",
    "posted_minor",
)


def _branch_variance(branch_id: str, currency: str, tally: Row) -> Row:
    row: Row = {"branch": branch_id, "currency": currency}
    for name, value in tally.items():
        if name.endswith("_minor"):
            row[name.removesuffix("_minor")] = money(value, currency)
        else:
            row[name] = value
    return row


def _count_row(count: CashCount) -> Row:
    currency = count.currency
    return {
        "counted_at": count.counted_at.isoformat(),
        "branch": count.branch_id,
        "currency": currency,
        "counted": money(count.counted_minor, currency),
        "book": money(count.book_minor, currency),
        "variance": money(count.variance_minor, currency),
        "status": count.status,
        "counted_by": count.counted_by_name,
    }


VARIANCE_COLUMNS = [
    column("branch", "Branch", "branch"),
    column("currency", "Currency"),
    column("counts", "Counts", "int"),
    column("balanced", "Balanced", "int"),
    column("shortages", "Shortages", "int"),
    column("shortage", "Short by", "money"),
    column("overages", "Overages", "int"),
    column("overage", "Over by", "money"),
    column("approved", "Approved", "int"),
    column("rejected", "Rejected", "int"),
    column("pending", "Pending", "int"),
    column("posted", "Posted to over/short", "money"),
]
COUNT_COLUMNS = [
    column("counted_at", "Counted at", "datetime"),
    column("branch", "Branch", "branch"),
    column("currency", "Currency"),
    column("counted", "Counted", "money"),
    column("book", "Book", "money"),
    column("variance", "Variance", "money"),
    column("status", "Status"),
    column("counted_by", "Counted by"),
]


# -- trial balance at a date --------------------------------------------------------------


def _figures_at(session: Session, at: date) -> Any:
    """Each account's (debits, credits) posted and held at the end of ``at``, as a subquery.

    Its days up to ``at`` summed; or, when fewer days lie after ``at`` than before it, the
    account's own totals (its transfers summed as they were written, kept equal to its days)
    less its days after ``at``: the trial balance at today reads no day at all.
    """
    d = AccountDay
    sums = [func.sum(getattr(d, name)).label(name) for name in FIGURES]
    first = session.scalar(select(func.min(d.day)))
    today = datetime.now(UTC).date()
    if first is None or (at < today and (today - at) >= (at - first)):
        return select(d.account_id, *sums).where(d.day <= at).group_by(d.account_id).subquery()
    moved = select(d.account_id, *sums).where(d.day > at).group_by(d.account_id).subquery()
    return (
        select(
            Account.id.label("account_id"),
            *[(getattr(Account, n) - func.coalesce(getattr(moved.c, n), 0)).label(n) for n in FIGURES],
        )
        .outerjoin(moved, moved.c.account_id == Account.id)
        .subquery()
    )


FIGURES = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


def trial_balance(session: Session, query: Query) -> dict[str, Any]:
    """Every account opened by the end of the day ``at`` (UTC) with its posted debits, credits
    and balance (and its holds) then, from its days (:func:`_figures_at`); and the totals per currency."""
    at = query.at or datetime.now(UTC).date()
    sums = _figures_at(session, at)
    a = Account
    rows = session.execute(
        select(a.code, a.kind, a.branch_id, a.currency, *[sums.c[n] for n in FIGURES])
        .outerjoin(sums, sums.c.account_id == a.id)
        .where(_accounts(query), a.created_at < after_day(at))
        .order_by(a.currency, a.code)
    ).all()
    accounts: list[Row] = []
    totals: dict[str, list[int]] = {}
    for code, kind, branch_id, cur, *figures in rows:
        dp, cp, dh, ch = (int(v or 0) for v in figures)
        accounts.append(
            {
                "code": code,
                "kind": kind,
                "branch": branch_id,
                "currency": cur,
                "debits": money(dp, cur),
                "credits": money(cp, cur),
                "balance": money(dp - cp, cur),
                "debits_pending": money(dh, cur),
                "credits_pending": money(ch, cur),
            }
        )
        total = totals.setdefault(cur, [0, 0, 0, 0])
        for i, value in enumerate((dp, cp, dh, ch)):
            total[i] += value
    return {
        "at": at.isoformat(),
        "sections": [
            section("accounts", "Accounts", ACCOUNT_COLUMNS, accounts),
            section("totals", "Totals", TOTAL_COLUMNS, [_total_row(cur, t) for cur, t in sorted(totals.items())]),
        ],
    }


def _total_row(currency: str, total: list[int]) -> Row:
    dp, cp, dh, ch = total
    return {
        "currency": currency,
        "debits": money(dp, currency),
        "credits": money(cp, currency),
        "debits_pending": money(dh, currency),
        "credits_pending": money(ch, currency),
        "balanced": dp == cp and dh == ch,
    }


ACCOUNT_COLUMNS = [
    column("code", "Account"),
    column("kind", "Kind"),
    column("branch", "Branch", "branch"),
    column("currency", "Currency"),
    column("debits", "Debits", "money"),
    column("credits", "Credits", "money"),
    column("balance", "Balance", "money"),
    column("debits_pending", "Debits held", "money"),
    column("credits_pending", "Credits held", "money"),
]
TOTAL_COLUMNS = [
    column("currency", "Currency"),
    column("debits", "Debits", "money"),
    column("credits", "Credits", "money"),
    column("debits_pending", "Debits held", "money"),
    column("credits_pending", "Credits held", "money"),
    column("balanced", "Balanced", "bool"),
]


# -- the general ledger export ------------------------------------------------------------


def _transfer_filter(query: Query, debit: Any, credit: Any) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if not query.actor.roles & GLOBAL_ROLES or query.branch_id is not None:
        clauses.append(or_(_accounts(query, debit), _accounts(query, credit)))
    if query.category is not None:
        prefix = f"expense:{query.category}:%"
        clauses.append(or_(debit.code.like(prefix), credit.code.like(prefix)))
    return and_(true(), *clauses)


def general_ledger(session: Session, query: Query) -> dict[str, Any]:
    """One page of the period's transfers in the order they were written (``limit`` of them
    after the cursor ``after``), each with its accounts; ``next`` is the cursor of the next page."""
    # Core tables and aliases, not ORM entities, and the ids as text: a page is a thousand rows,
    # each taken apart by position (the ORM's row processing and Python's uuid objects cost
    # more than the query).
    accounts = Account.__table__
    debit, credit = accounts.alias("debit"), accounts.alias("credit")
    t = Transfer.__table__
    statement = (
        select(
            t.c.created_at,
            uuid_text(t.c.id),
            t.c.kind,
            debit.c.code,
            credit.c.code,
            t.c.amount_minor,
            t.c.currency,
            t.c.pending,
            uuid_text(t.c.pending_id),
            uuid_text(t.c.reversal_of),
            uuid_text(t.c.requisition_id),
            t.c.memo,
        )
        .select_from(t)
        .join(debit, debit.c.id == t.c.debit_account_id)
        .join(credit, credit.c.id == t.c.credit_account_id)
        .where(t.c.created_at >= query.start, t.c.created_at < query.end, _transfer_filter(query, debit.c, credit.c))
        .order_by(t.c.created_at, t.c.id)
        .limit(query.limit + 1)
    )
    if query.after is not None:
        try:
            at, after_id = rp.decode_cursor(query.after)
        except rp.BadCursor as exc:
            raise DomainError(str(exc), code="bad-cursor", status=400) from exc
        statement = statement.where(or_(t.c.created_at > at, and_(t.c.created_at == at, t.c.id > after_id)))
    found = session.execute(statement).all()
    page = found[: query.limit]
    last = page[-1] if page and len(found) > query.limit else None
    return {
        "next": rp.encode_cursor(last[0], last[1]) if last is not None else None,
        "sections": [section("transfers", "Transfers", GL_COLUMNS, [_gl_row(*row) for row in page])],
    }


def _gl_row(
    created_at: datetime,
    transfer_id: str,
    kind: str,
    debit: str,
    credit: str,
    amount_minor: int,
    currency: str,
    pending: bool,
    resolves: str,
    reverses: str,
    requisition_id: str,
    memo: str,
) -> Row:
    """A general ledger row from the page's columns, in the statement's order."""
    return {
        "created_at": created_at.isoformat(),
        "id": transfer_id,
        "kind": kind,
        "debit": debit,
        "credit": credit,
        "amount": money(amount_minor, currency),
        "currency": currency,
        "pending": pending,
        "resolves": resolves,
        "reverses": reverses,
        "requisition_id": requisition_id,
        "memo": memo,
    }


GL_COLUMNS = [
    column("created_at", "Written at", "datetime"),
    column("id", "Transfer"),
    column("kind", "Kind"),
    column("debit", "Debit account"),
    column("credit", "Credit account"),
    column("amount", "Amount", "money"),
    column("currency", "Currency"),
    column("pending", "Pending", "bool"),
    column("resolves", "Resolves hold"),
    column("reverses", "Reverses"),
    column("requisition_id", "Requisition"),
    column("memo", "Memo"),
]

BUILDERS: dict[str, Builder] = {
    "fund-health": fund_health,
    "variance-analysis": variance_analysis,
    "spending": spending,
    "trial-balance": trial_balance,
    "general-ledger": general_ledger,
}

run_report = report_handler("ledger", BUILDERS)
