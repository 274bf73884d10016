"""The Celery app factory: one configuration for every process that talks to the bus."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from celery import Celery

from shared import fastjson
from shared.config import Settings
from shared.contracts.catalog import (
    EVENTS,
    TASKS_BY_NAME,
    TaskSpec,
    handle_event_task,
    handle_events_task,
    queue_of,
    task_routes,
)


def make_celery(settings: Settings, name: str) -> Celery:
    """A Celery app configured for at-least-once delivery with idempotent consumers."""
    if settings.embedded:
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            Path(str(settings.broker_transport_options[key])).mkdir(parents=True, exist_ok=True)
    fastjson.register_with_kombu()
    app = Celery(name, broker=settings.broker_url, backend=settings.result_backend, set_as_current=False)
    conf: dict[str, Any] = {
        "task_routes": task_routes(),
        "task_serializer": "json",
        # Replies and reports leave as JSON written and read by orjson (``shared.fastjson``).
        "result_serializer": fastjson.SERIALIZER,
        "accept_content": ["json", fastjson.SERIALIZER],
        # Consumers are idempotent (inbox), so a message is acknowledged only after its
        # transaction commits, and a worker that dies mid-task gives the message back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": dict(settings.broker_transport_options),
        "broker_connection_retry_on_startup": True,
        "result_expires": 3600,
        "task_default_queue": "default",
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }
    if settings.embedded:
        conf["broker_transport"] = "shared.messaging.fs_transport:Transport"
    elif settings.broker_url.startswith(("redis://", "rediss://")):
        conf["broker_transport"] = "shared.messaging.redis_transport:Transport"
    if settings.result_backend.startswith("db+sqlite"):
        conf["database_engine_options"] = {"connect_args": {"timeout": 30}}
        conf["database_create_tables_at_setup"] = True
    if settings.result_backend.startswith("redis"):
        conf["redis_backend_health_check_interval"] = 30
    app.conf.update(conf)
    return app


def send_command(
    app: Celery,
    spec: TaskSpec,
    envelope: dict[str, Any],
    origin: str | None = None,
    *,
    expires: float | None = None,
    producer: Any = None,
) -> str:
    """Send a command or query (checked against its contract); the task id is the message id,
    so its result can be found. ``origin``: the service whose outbox it came from, which the
    consumer acknowledges it to (``shared.messaging.delivery``); ``expires``: seconds after
    which a worker drops it unrun (a query nobody waits for anymore); ``producer``: a kombu
    producer to send with (the caller's pooled connection)."""
    from shared.contracts.envelope import load_envelope
    from shared.messaging.outbox import check_contract

    check_contract(load_envelope(envelope))
    kwargs = {"origin": origin} if origin else {}
    app.send_task(
        spec.name,
        args=[envelope],
        kwargs=kwargs,
        queue=spec.queue,
        task_id=envelope["message_id"],
        expires=expires,
        countdown=spec.hold_seconds or None,
        producer=producer,
    )
    return str(envelope["message_id"])


def recipients(envelope: dict[str, Any]) -> tuple[str, ...]:
    """The services that must take an outbox message (an event's subscribers, a task's owner)."""
    task = TASKS_BY_NAME.get(envelope["type"])
    return (task.service,) if task is not None else EVENTS[envelope["type"]].subscribers


# At most this many events travel to one subscriber in one bundle (``<service>.handle_events``).
BUNDLE_LIMIT = 50


def send_event(app: Celery, subscriber: str, envelope: dict[str, Any], origin: str | None) -> None:
    """Send one event to one subscriber's ``handle_event`` task."""
    app.send_task(
        handle_event_task(subscriber),
        args=[envelope],
        kwargs={"origin": origin} if origin else {},
        queue=queue_of(subscriber),
        # Deterministic per subscriber, so a re-sent event is traceable as the same one.
        task_id=str(uuid.uuid5(uuid.UUID(envelope["message_id"]), subscriber)),
        ignore_result=True,
    )


class EventPublisher:
    """Sends outbox messages: an event to every subscriber (or to those named, for a re-send), a
    task to its queue; each tagged with the sending service. ``duplicate`` (fault runs only)
    sends every message twice, as a flaky broker might.

    :meth:`many` sends what one commit (or one relay batch) holds: the events for one
    subscriber travel together as a bundle, which the subscriber takes in one transaction
    (``shared.messaging.runtime``), each still recorded, deduplicated and acknowledged on its own.
    """

    def __init__(self, app: Celery, origin: str | None = None, *, duplicate: bool = False) -> None:
        self.app = app
        self.origin = origin
        self.copies = 2 if duplicate else 1

    def __call__(self, envelope: dict[str, Any], only: tuple[str, ...] | None = None) -> None:
        for _ in range(self.copies):
            self._publish_once(envelope, only)

    def many(self, envelopes: list[dict[str, Any]]) -> None:
        """Send these messages, in order: the events before a task are sent before it, one
        bundle per subscriber (a lone event goes as it would alone)."""
        waiting: dict[str, list[dict[str, Any]]] = {}
        for envelope in envelopes:
            if envelope["type"] in TASKS_BY_NAME:
                self._send_bundles(waiting)
                waiting = {}
                self(envelope)
                continue
            for subscriber in EVENTS[envelope["type"]].subscribers:
                waiting.setdefault(subscriber, []).append(envelope)
        self._send_bundles(waiting)

    def _send_bundles(self, waiting: dict[str, list[dict[str, Any]]]) -> None:
        kwargs = {"origin": self.origin} if self.origin else {}
        for subscriber, events in waiting.items():
            for start in range(0, len(events), BUNDLE_LIMIT):
                bundle = events[start : start + BUNDLE_LIMIT]
                for _ in range(self.copies):
                    if len(bundle) == 1:
                        send_event(self.app, subscriber, bundle[0], self.origin)
                        continue
                    self.app.send_task(
                        handle_events_task(subscriber),
                        args=[bundle],
                        kwargs=kwargs,
                        queue=queue_of(subscriber),
                        ignore_result=True,
                    )

    def _publish_once(self, envelope: dict[str, Any], only: tuple[str, ...] | None) -> None:
        task = TASKS_BY_NAME.get(envelope["type"])
        if task is not None:  # a command a service sends itself or another, after its commit
            send_command(self.app, task, envelope, self.origin)
            return
        for subscriber in EVENTS[envelope["type"]].subscribers:
            if only is None or subscriber in only:
                send_event(self.app, subscriber, envelope, self.origin)


def event_publisher(app: Celery, origin: str | None = None, *, duplicate: bool = False) -> EventPublisher:
    """The publisher of one service's outbox messages (see :class:`EventPublisher`)."""
    return EventPublisher(app, origin, duplicate=duplicate)
