"""The scheduler (Celery beat): periodic maintenance and, later, SLA timers."""

from __future__ import annotations

from typing import Any

from celery import Celery

from shared.config import SERVICES, Settings
from shared.contracts.catalog import SCHEDULE, prune_messages_task, queue_of
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.messaging.app import make_celery


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Every periodic task, by name; each carries a system envelope."""
    schedule: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        name = prune_messages_task(service)
        schedule[name] = {
            "task": name,
            "schedule": 3600.0,
            "args": [Envelope(type=name, payload={}, actor=SYSTEM_ACTOR).to_dict()],
            "options": {"queue": queue_of(service)},
        }
    for spec, seconds in SCHEDULE:
        schedule[spec.name] = {
            "task": spec.name,
            "schedule": seconds,
            "args": [Envelope(type=spec.name, payload={}, actor=SYSTEM_ACTOR).to_dict()],
            "options": {"queue": spec.queue},
        }
    return schedule


def make_beat_app(settings: Settings) -> Celery:
    """The Celery app the beat process runs."""
    app = make_celery(settings, "beat")
    app.conf.beat_schedule = beat_schedule()
    return app
