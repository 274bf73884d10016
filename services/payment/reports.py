"""The report the payment service computes from its own tables (``payment.run_report``): the
payment summary, the payments of the period (made, UTC days) by method, status and branch."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from services.payment.models import Payment
from shared.contracts import reports as rp
from shared.db.scope import in_scope
from shared.messaging.reports import Builder, ReportQuery, report_handler


def payment_summary(session: Session, query: ReportQuery) -> dict[str, Any]:
    """How many payments and how much, by branch, method and status; and by method, by status."""
    p = Payment
    rows = session.execute(
        select(p.branch_id, p.payee_method, p.state, p.currency, func.count(), func.sum(p.amount_minor))
        .where(
            p.created_at >= query.start,
            p.created_at < query.end,
            in_scope(query.actor, p.branch_id, p.region_id),
            p.branch_id == query.branch_id if query.branch_id else true(),
        )
        .group_by(p.branch_id, p.payee_method, p.state, p.currency)
        .order_by(p.branch_id, p.payee_method, p.state, p.currency)
    ).all()
    detail = [
        {"branch": b, "method": m, "status": s, "currency": c, "payments": int(n), "amount": rp.money(total, c)}
        for b, m, s, c, n, total in rows
    ]
    return {
        "sections": [
            rp.section("by_branch", "By branch, method and status", DETAIL_COLUMNS, detail),
            _rolled_up(detail, "method", "By method"),
            _rolled_up(detail, "status", "By status"),
        ]
    }


def _rolled_up(detail: list[dict[str, Any]], by: str, title: str) -> dict[str, Any]:
    totals: dict[tuple[str, str], list[int]] = {}
    for row in detail:
        total = totals.setdefault((row[by], row["currency"]), [0, 0])
        total[0] += row["payments"]
        total[1] += row["amount"]["minor_units"]
    columns = [rp.column(by, by.capitalize()), *DETAIL_COLUMNS[3:]]
    rows = [
        {by: key, "currency": currency, "payments": n, "amount": rp.money(amount, currency)}
        for (key, currency), (n, amount) in sorted(totals.items())
    ]
    return rp.section(f"by_{by}", title, columns, rows)


DETAIL_COLUMNS = [
    rp.column("branch", "Branch", "branch"),
    rp.column("method", "Method"),
    rp.column("status", "Status"),
    rp.column("currency", "Currency"),
    rp.column("payments", "Payments", "int"),
    rp.column("amount", "Amount", "money"),
]

BUILDERS: dict[str, Builder] = {"payment-summary": payment_summary}

run_report = report_handler("payment", BUILDERS)
