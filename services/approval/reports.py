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

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from services.approval.models import ApprovalCase, ApprovalStep
from shared.contracts import reports as rp
from shared.db.scope import in_scope
from shared.messaging.reports import Builder, ReportQuery, report_handler

HOUR = 3600.0


def nearest_rank(values: list[float], percent: float) -> float:
    """The ``percent``th percentile of ``values`` (sorted) by the nearest rank."""
    return values[max(0, math.ceil(percent / 100 * len(values)) - 1)]


def _filters(query: ReportQuery) -> list[Any]:
    c = ApprovalCase
    return [
        in_scope(query.actor, c.branch_id, c.region_id),
        c.branch_id == query.branch_id if query.branch_id else true(),
        c.category == query.category if query.category else true(),
    ]


def _steps_decided_in(query: ReportQuery) -> list[Any]:
    """The steps decided in the period, of cases not closed before it: a case closes at its last
    decision (reopened, it is open again), so no step decided in the period has a case closed
    earlier, and the index on ``closed_at`` spares reading every case there is."""
    c, s = ApprovalCase, ApprovalStep
    return [
        s.decided_at >= query.start,
        s.decided_at < query.end,
        s.activated_at.is_not(None),
        or_(c.closed_at >= query.start, c.closed_at.is_(None)),
        *_filters(query),
    ]


def _decided_steps(session: Session, query: ReportQuery) -> Iterable[Any]:
    c, s = ApprovalCase, ApprovalStep
    return session.execute(
        select(c.tier, s.role, s.activated_at, s.decided_at, s.sla_escalated, s.escalation_reason)
        .join(c, c.id == s.case_id)
        .where(*_steps_decided_in(query))
    ).all()


def _step_escalated() -> Any:
    """``models.ESCALATED``, spelt as the partial index is, so PostgreSQL reads the index."""
    s = ApprovalStep
    return or_(s.sla_escalated, s.escalation_reason != "")


def _escalated_case(case_id: Any) -> Any:
    """Whether a case had an escalated step (of any revision)."""
    s = ApprovalStep
    return case_id.in_(select(s.case_id).where(_step_escalated()))


def _closed_cases(session: Session, query: ReportQuery) -> Iterable[Any]:
    c = ApprovalCase
    return session.execute(
        select(c.tier, c.opened_at, c.closed_at, _escalated_case(c.id).label("escalated")).where(
            c.closed_at >= query.start, c.closed_at < query.end, *_filters(query)
        )
    ).all()


# (group, count, median hours, 90th percentile hours, escalated): a group is (tier, role) for
# steps, (tier,) for cases.
Figures = tuple[tuple[str, ...], int, float, float, int]


def _in_python(found: Iterable[Any], width: int) -> list[Figures]:
    """Each group's figures from its rows (its key's ``width`` columns, then from, to, escalated)."""
    groups: dict[tuple[str, ...], tuple[list[float], list[int]]] = {}
    for row in found:
        key, (began, ended, escalated_row) = tuple(row[:width]), row[width:]
        hours, escalated = groups.setdefault(key, ([], [0]))
        hours.append((ended - began).total_seconds() / HOUR)
        escalated[0] += int(bool(escalated_row))
    figures = []
    for key, (hours, escalated) in sorted(groups.items()):
        ordered = sorted(hours)
        figures.append((key, len(ordered), statistics.median(ordered), nearest_rank(ordered, 90), escalated[0]))
    return figures


def _hours(ended: Any, began: Any) -> Any:
    """Hours between two times, as a double: ``date_part`` rather than ``extract``, whose numeric
    (since PostgreSQL 14) costs the percentiles' sorts three times as much; the double is the
    one Python's ``total_seconds() / HOUR`` gives."""
    return func.date_part("epoch", ended - began) / HOUR


def _aggregates(hours: Any, escalated: Any) -> list[Any]:
    """PostgreSQL's count, median (interpolated, as ``statistics.median``), 90th percentile by
    the nearest rank (``percentile_disc``, as :func:`nearest_rank`) and escalated count."""
    return [
        func.count(),
        func.percentile_cont(0.5).within_group(hours),
        func.percentile_disc(0.9).within_group(hours),
        func.count().filter(escalated),
    ]


def steps_in_sql(session: Session, query: ReportQuery) -> list[Figures]:
    """:func:`step_figures` computed by PostgreSQL, where the rows are."""
    c, s = ApprovalCase, ApprovalStep
    statement = (
        select(c.tier, s.role, *_aggregates(_hours(s.decided_at, s.activated_at), _step_escalated()))
        .join(c, c.id == s.case_id)
        .where(*_steps_decided_in(query))
        .group_by(c.tier, s.role)
    )
    return sorted(
        ((tier, role), n, median, p90, escalated)
        for tier, role, n, median, p90, escalated in session.execute(statement)
    )


def cases_in_sql(session: Session, query: ReportQuery) -> list[Figures]:
    """:func:`case_figures` computed by PostgreSQL."""
    c = ApprovalCase
    statement = (
        select(c.tier, *_aggregates(_hours(c.closed_at, c.opened_at), _escalated_case(c.id)))
        .where(c.closed_at >= query.start, c.closed_at < query.end, *_filters(query))
        .group_by(c.tier)
    )
    return sorted(
        ((tier,), n, median, p90, escalated) for tier, n, median, p90, escalated in session.execute(statement)
    )


def steps_in_python(session: Session, query: ReportQuery) -> list[Figures]:
    """:func:`step_figures` computed here, from the steps' rows."""
    steps = (
        (t, r, began, ended, overdue or reason)
        for t, r, began, ended, overdue, reason in _decided_steps(session, query)
    )
    return _in_python(steps, 2)


def cases_in_python(session: Session, query: ReportQuery) -> list[Figures]:
    """:func:`case_figures` computed here, from the cases' rows."""
    return _in_python(_closed_cases(session, query), 1)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def step_figures(session: Session, query: ReportQuery) -> list[Figures]:
    """Each (tier, role)'s steps decided in the period, in order: PostgreSQL computes the
    percentiles where the rows are (rather than sending them all); embedded SQLite leaves it to
    Python. The two agree (tested)."""
    return (steps_in_sql if _postgres(session) else steps_in_python)(session, query)


def case_figures(session: Session, query: ReportQuery) -> list[Figures]:
    """Each tier's cases closed in the period, from submission to the decision (as :func:`step_figures`)."""
    return (cases_in_sql if _postgres(session) else cases_in_python)(session, query)


def _row(names: tuple[str, ...], count_name: str, figures: Figures) -> dict[str, Any]:
    """One group's row: its key's columns, how many, the hours (to two places), escalated."""
    key, n, median, p90, escalated = figures
    return {
        **dict(zip(names, key, strict=True)),
        count_name: n,
        "median_hours": round(float(median), 2),
        "p90_hours": round(float(p90), 2),
        "escalated": escalated,
    }


def approval_turnaround(session: Session, query: ReportQuery) -> dict[str, Any]:
    """Hours per step by tier and role (median, 90th percentile) with the escalated steps; and
    hours from submission to the decision per tier, for the cases closed in the period."""
    step_rows = [_row(("tier", "role"), "steps", f) for f in step_figures(session, query)]
    case_rows = [_row(("tier",), "cases", f) for f in case_figures(session, query)]
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
