"""Every task name, queue, route and event subscription, declared once.

Commands and queries are tasks named ``<service>.<verb>_<noun>`` on the owning service's
queue. Events are past-tense names; the relay fans each one out to the ``handle_event``
task of every subscriber listed here. Nothing else in the code base spells a task name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from marshmallow import Schema

from shared.contracts import payloads as p

Kind = Literal["command", "query", "maintenance"]


@dataclass(frozen=True)
class TaskSpec:
    """A task one service serves: its name, queue and payload schema."""

    name: str
    kind: Kind
    payload: type[Schema]

    @property
    def service(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def queue(self) -> str:
        return queue_of(self.service)


@dataclass(frozen=True)
class EventSpec:
    """An event, its payload schema and the services that subscribe to it."""

    name: str
    payload: type[Schema]
    subscribers: tuple[str, ...]


def queue_of(service: str) -> str:
    """The queue a service consumes (one per service; scale by adding workers)."""
    return service


def handle_event_task(service: str) -> str:
    """The task through which a service receives the events it subscribes to."""
    return f"{service}.handle_event"


def prune_messages_task(service: str) -> str:
    """The periodic task that trims a service's old inbox and published outbox rows."""
    return f"{service}.prune_messages"


SUBMIT_REQUISITION = TaskSpec("requisition.submit_requisition", "command", p.SubmitRequisitionPayload)
GET_REQUISITION = TaskSpec("requisition.get_requisition", "query", p.ByIdPayload)
GET_APPROVAL_CASE = TaskSpec("approval.get_approval_case", "query", p.ByIdPayload)

TASKS: tuple[TaskSpec, ...] = (SUBMIT_REQUISITION, GET_REQUISITION, GET_APPROVAL_CASE)

REQUISITION_SUBMITTED = EventSpec("RequisitionSubmitted", p.RequisitionSubmittedPayload, ("approval",))
APPROVAL_CASE_OPENED = EventSpec("ApprovalCaseOpened", p.ApprovalCaseOpenedPayload, ("requisition",))

EVENTS: dict[str, EventSpec] = {e.name: e for e in (REQUISITION_SUBMITTED, APPROVAL_CASE_OPENED)}

TASKS_BY_NAME: dict[str, TaskSpec] = {t.name: t for t in TASKS}


def task_routes() -> dict[str, dict[str, str]]:
    """Celery ``task_routes``: every task to its service's queue."""
    from shared.config import SERVICES

    routes = {t.name: {"queue": t.queue} for t in TASKS}
    for service in SERVICES:
        routes[handle_event_task(service)] = {"queue": queue_of(service)}
        routes[prune_messages_task(service)] = {"queue": queue_of(service)}
    return routes


def subscriptions(service: str) -> tuple[EventSpec, ...]:
    """The events a service receives."""
    return tuple(e for e in EVENTS.values() if service in e.subscribers)
