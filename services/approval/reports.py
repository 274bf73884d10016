"""The report the approval service computes from its own tables (``approval.run_report``):
approval turnaround, how long each step of the chains took and how many escalated.

A step's time is from when it became active to its decision; the steps counted are those
decided in the period (UTC days). Percentiles are by the nearest rank: the 90th of ten
values is the ninth, so each figure is an hour some step really took.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select, true
from sqlalchemy.orm import Session

from services.approval.models import ApprovalCase, ApprovalStep
from shared.contracts import reports as rp
from shared.db.scope import in_scope
from shared.messaging.reports import Builder, ReportQuery, report_handler

HOUR = 3600.0


def nearest_rank(values: list[float], percent: float) -> float:
    """The ``percent``th percentile of ``values`` (sorted) by the nearest rank."""
    return values[max(0, math.ceil(percent / 100 * len(values)) - 1)]


def _figures(hours: list[float]) -> dict[str, Any]:
    ordered = sorted(hours)
    if not ordered:
        return {"median_hours": None, "p90_hours": None}
    return {
        "median_hours": round(statistics.median(ordered), 2),
        "p90_hours": round(nearest_rank(ordered, 90), 2),
    }


def _decided_steps(session: Session, query: ReportQuery) -> Iterable[Any]:
    c, s = ApprovalCase, ApprovalStep
    return session.execute(
        select(c.tier, s.role, s.acted_as, s.activated_at, s.decided_at, s.sla_escalated, s.escalation_reason)
        .join(c, c.id == s.case_id)
        .where(
            s.decided_at >= query.start,
            s.decided_at < query.end,
            s.activated_at.is_not(None),
            in_scope(query.actor, c.branch_id, c.region_id),
            c.branch_id == query.branch_id if query.branch_id else true(),
            c.category == query.category if query.category else true(),
        )
    ).all()


def _closed_cases(session: Session, query: ReportQuery) -> Iterable[Any]:
    c, s = ApprovalCase, ApprovalStep
    escalated = (
        select(s.id).where(s.case_id == c.id, or_(s.sla_escalated.is_(True), s.escalation_reason != "")).exists()
    )
    return session.execute(
        select(c.tier, c.status, c.opened_at, c.closed_at, escalated.label("escalated")).where(
            c.closed_at >= query.start,
            c.closed_at < query.end,
            in_scope(query.actor, c.branch_id, c.region_id),
            c.branch_id == query.branch_id if query.branch_id else true(),
            c.category == query.category if query.category else true(),
        )
    ).all()


def approval_turnaround(session: Session, query: ReportQuery) -> dict[str, Any]:
    """Hours per step by tier and role (median, 90th percentile) with the escalated steps; and
    hours from submission to the decision per tier, for the cases closed in the period."""
    steps: dict[tuple[str, str], tuple[list[float], list[int]]] = {}
    for tier, role, _acted_as, activated_at, decided_at, overdue, reason in _decided_steps(session, query):
        hours, escalated = steps.setdefault((tier, role), ([], [0]))
        hours.append((decided_at - activated_at).total_seconds() / HOUR)
        escalated[0] += int(bool(overdue or reason))
    step_rows = [
        {"tier": tier, "role": role, "steps": len(hours), **_figures(hours), "escalated": escalated[0]}
        for (tier, role), (hours, escalated) in sorted(steps.items())
    ]
    cases: dict[str, tuple[list[float], list[int]]] = {}
    for tier, _status, opened_at, closed_at, escalated_case in _closed_cases(session, query):
        hours, escalated = cases.setdefault(tier, ([], [0]))
        hours.append((closed_at - opened_at).total_seconds() / HOUR)
        escalated[0] += int(bool(escalated_case))
    case_rows = [
        {"tier": tier, "cases": len(hours), **_figures(hours), "escalated": escalated[0]}
        for tier, (hours, escalated) in sorted(cases.items())
    ]
    figures = [
        rp.column("median_hours", "Median hours", "number"),
        rp.column("p90_hours", "90th percentile hours", "number"),
    ]
    return {
        "sections": [
            rp.section(
                "steps",
                "Steps decided, by tier and role",
                [
                    rp.column("tier", "Tier"),
                    rp.column("role", "Role"),
                    rp.column("steps", "Steps", "int"),
                    *figures,
                    rp.column("escalated", "Escalated", "int"),
                ],
                step_rows,
            ),
            rp.section(
                "cases",
                "Cases closed, by tier",
                [
                    rp.column("tier", "Tier"),
                    rp.column("cases", "Cases", "int"),
                    *figures,
                    rp.column("escalated", "With an escalation", "int"),
                ],
                case_rows,
            ),
        ]
    }


BUILDERS: dict[str, Builder] = {"approval-turnaround": approval_turnaround}

run_report = report_handler("approval", BUILDERS)
