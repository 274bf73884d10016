"""The query handler every service's reports share (``<service>.run_report``): who may read,
which report, and its parameters as one value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from shared.contracts import reports as rp
from shared.contracts.envelope import Actor, Envelope
from shared.contracts.permissions import Action, may, permission
from shared.messaging.errors import DomainError, Forbidden, ok_reply


@dataclass(frozen=True)
class ReportQuery:
    """A report's parameters (``shared.contracts.reports.ReportPayload``) and who asks."""

    actor: Actor
    from_day: date | None = None
    to_day: date | None = None
    at: date | None = None
    branch_id: str | None = None
    category: str | None = None
    limit: int = rp.GL_DEFAULT_LIMIT
    after: str | None = None

    @property
    def start(self) -> datetime:
        """The period's first instant (UTC)."""
        return start_of(self.from_day or date.min)

    @property
    def end(self) -> datetime:
        """The first instant after the period (UTC)."""
        return after_day(self.to_day or date.max)


def start_of(day: date) -> datetime:
    """A UTC day's first instant."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def after_day(day: date) -> datetime:
    """The first instant after a UTC day (the last instant there is, after the last day)."""
    if day == date.max:
        return datetime.max.replace(tzinfo=UTC)
    return start_of(day + timedelta(days=1))


Builder = Callable[[Session, ReportQuery], dict[str, Any]]


def report_handler(service: str, builders: dict[str, Builder]) -> Callable[[Session, Envelope, dict[str, Any]], Any]:
    """The ``run_report`` query of a service that computes ``builders``' reports."""

    def run_report(session: Session, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
        if not may(envelope.actor, Action.READ_REPORTS):
            rule = permission(Action.READ_REPORTS).describe()
            raise Forbidden(f"Only {rule} may read reports.", code="role-required")
        build = builders.get(payload["report"])
        if build is None:
            raise DomainError(f"The {service} service keeps no {payload['report']} report.", code="unknown-report")
        query = ReportQuery(
            envelope.actor,
            payload["from_day"],
            payload["to_day"],
            payload["at"],
            payload["branch_id"],
            payload["category"],
            payload["limit"],
            payload["after"],
        )
        return ok_reply(200, build(session, query))

    run_report.__doc__ = f"One of the {service} service's reports, in the actor's scope."
    return run_report
