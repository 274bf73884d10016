"""Treasury's and finance's dashboard, put together from the gateway's projections: each
float against its levels with the days left at the trailing 30 days' spend, the requisitions
waiting (for approval, for funds, to be paid), payments executing, failed and paid today,
unresolved alerts by severity, the latest payments, the balance over 30 days and the spend
by category.

Nothing here reads a transfer: the float days (one row per float and day, kept by the
ledger with each transfer) carry the history. What the readers of one scope see is the
same, so it is kept for :data:`FRESH_SECONDS` per scope and branch in each gateway process.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.gateway import reads
from services.gateway.reads import Reader
from shared.contracts.envelope import Actor
from shared.contracts.roles import BRANCH_ROLES, GLOBAL_ROLES, REGION_ROLES

WINDOW_DAYS = 30
FRESH_SECONDS = 5.0
LATEST = 10
# What each open state counts as on the dashboard.
COUNTED = {
    "pending_approval": "waiting_approval",
    "pending_urgency_confirmation": "waiting_approval",
    "awaiting_funds": "waiting_funds",
    "reserved": "ready",
    "payment_processing": "executing",
    "payment_failed": "failed",
}
COUNTS = ("waiting_approval", "waiting_funds", "ready", "executing", "failed", "paid_today")

# Per scope, branch and day: when it was built, the dashboard, and its JSON once asked for.
_cache: dict[tuple[Any, ...], list[Any]] = {}
_lock = threading.Lock()


def scope_key(actor: Actor) -> tuple[Any, ...]:
    """Who sees the same dashboard: everyone with a global role, or the same branches and regions."""
    if actor.roles & GLOBAL_ROLES:
        return ("all",)
    regions = tuple(sorted(actor.region_ids)) if actor.roles & REGION_ROLES else ()
    branches = tuple(sorted(actor.branch_ids)) if actor.roles & BRANCH_ROLES else ()
    return (regions, branches)


def dashboard(
    session_of: Any, actor: Actor, branch_id: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The dashboard of the actor's scope (one branch's, when given), at most FRESH_SECONDS old.

    ``session_of``: a context manager factory giving a :data:`~services.gateway.reads.Reader`.
    """
    return dict(_kept(session_of, actor, branch_id, now)[1])


def dashboard_json(session_of: Any, actor: Actor, branch_id: str | None, dump: Callable[[dict[str, Any]], str]) -> str:
    """The same dashboard as JSON (``dump``: the API's schema), dumped once each time it is built."""
    entry = _kept(session_of, actor, branch_id, None)
    if entry[2] is None:
        entry[2] = dump(entry[1])
    return str(entry[2])


def _kept(session_of: Any, actor: Actor, branch_id: str | None, now: datetime | None) -> list[Any]:
    now = now or datetime.now(UTC)
    key = (scope_key(actor), branch_id, now.date())
    with _lock:
        kept = _cache.get(key)
    if kept is not None and time.monotonic() - kept[0] < FRESH_SECONDS:
        return kept
    with session_of() as session:
        entry = [time.monotonic(), build(session, actor, branch_id, now), None]
    with _lock:
        _cache[key] = entry
    return entry


def build(session: Reader, actor: Actor, branch_id: str | None, now: datetime) -> dict[str, Any]:
    """The dashboard from the projections, now."""
    today = now.date()
    since = today - timedelta(days=WINDOW_DAYS - 1)
    floats = reads.floats(session, actor, branch_id)
    days = reads.float_days(session, actor, since, branch_id)
    counts = _counts(session, actor, branch_id, datetime.combine(today, datetime.min.time(), UTC))
    spent = _spent(days)
    branches = [_branch(f, spent, counts) for f in floats]
    return {
        "as_of": now.isoformat(),
        "window_days": WINDOW_DAYS,
        "branches": branches,
        "totals": _totals(branches, counts),
        "alerts": reads.alert_counts(session, actor),
        "balance_history": _history(floats, days, today),
        "spend_by_category": _by_category(days),
        "latest_payments": [_without_history(p) for p in reads.latest_payments(session, actor, LATEST, branch_id)],
    }


def _counts(session: Reader, actor: Actor, branch_id: str | None, midnight: datetime) -> dict[str, dict[str, int]]:
    """Per branch id: how many requisitions wait in each way, and payments made today."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    for branch, state, n in reads.open_requisition_counts(session, actor, branch_id):
        counts[branch][COUNTED[state]] += n
    for branch, n in reads.payments_since(session, actor, midnight, branch_id):
        counts[branch]["paid_today"] += n
    return counts


def _spent(days: list[Any]) -> dict[tuple[str, str], int]:
    """Spend over the window per (branch id, currency)."""
    spent: dict[tuple[str, str], int] = defaultdict(int)
    for row in days:
        spent[(row.branch_id, row.currency)] += row.spent_minor
    return spent


def _money(minor: int, currency: str) -> dict[str, Any]:
    return {"minor_units": minor, "currency": currency}


def days_left(available: int, reorder_level: int | None, spent_in_window: int) -> int | None:
    """Whole days until the float reaches its reorder level at the window's daily spend (None:
    no level, or no spend to go by; 0: at or below it already)."""
    if reorder_level is None or spent_in_window <= 0:
        return None
    return max(0, (available - reorder_level) * WINDOW_DAYS // spent_in_window)


def _branch(fl: dict[str, Any], spent: dict[tuple[str, str], int], counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    currency = fl["available"]["currency"]
    window_spend = spent.get((fl["branch_id"], currency), 0)
    reorder = fl["reorder_level"]["minor_units"] if fl.get("reorder_level") else None
    return {
        **fl,
        "currency": currency,
        "spent_in_window": _money(window_spend, currency),
        "days_left": days_left(fl["available"]["minor_units"], reorder, window_spend),
        **counts.get(fl["branch_id"], dict.fromkeys(COUNTS, 0)),
    }


def _totals(branches: list[dict[str, Any]], counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Money per currency over the floats; the counts over every branch in scope."""
    money: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(("balance", "held", "available", "spent"), 0))
    for b in branches:
        total = money[b["currency"]]
        for part in ("balance", "held", "available"):
            total[part] += b[part]["minor_units"]
        total["spent"] += b["spent_in_window"]["minor_units"]
    return {
        "money": [{"currency": c, **{k: _money(v, c) for k, v in parts.items()}} for c, parts in sorted(money.items())],
        **{name: sum(c[name] for c in counts.values()) for name in COUNTS},
    }


def _history(floats: list[dict[str, Any]], days: list[Any], today: date) -> list[dict[str, Any]]:
    """The total balance per currency at the end of each day of the window, worked back from
    today's balance: the day before ends where this one began (less what came in, plus what
    went out)."""
    flows: dict[tuple[str, date], int] = defaultdict(int)
    for row in days:
        flows[(row.currency, row.day)] += row.funded_minor - row.spent_minor
    closing: dict[str, int] = defaultdict(int)
    for fl in floats:
        closing[fl["balance"]["currency"]] += fl["balance"]["minor_units"]
    history = []
    for currency, now in sorted(closing.items()):
        points, balance = [], now
        for back in range(WINDOW_DAYS):
            day = today - timedelta(days=back)
            points.append({"day": day.isoformat(), "balance": _money(balance, currency)})
            balance -= flows.get((currency, day), 0)
        history.append({"currency": currency, "points": points[::-1]})
    return history


def _by_category(days: list[Any]) -> list[dict[str, Any]]:
    spent: dict[tuple[str, str], int] = defaultdict(int)
    for row in days:
        for category, minor in (row.body or {}).get("spent_by_category", {}).items():
            spent[(row.currency, category)] += int(minor)
    ranked = sorted(spent.items(), key=lambda item: (item[0][0], -item[1]))
    return [{"category": cat, "spent": _money(minor, cur)} for (cur, cat), minor in ranked if minor]


def _without_history(payment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payment.items() if k != "history"}
