"""A service's runtime: its database, its Celery app, and the thin adapters around its use cases.

Every consumer follows the same path (STYLE.md rules 4 to 7): decode the envelope and the
payload strictly; skip a message the inbox has seen; run the use case in one transaction
with the inbox row and any outbox rows; publish the outbox after commit; retry transient
errors with backoff and jitter; bury anything else in the dead-letter table.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import backoff
from shared.config import Settings
from shared.contracts import instances
from shared.contracts.catalog import (
    ACKS,
    EVENTS,
    EXPORTS,
    TaskSpec,
    handle_event_task,
    handle_events_task,
    prune_messages_task,
    queue_of,
    subscriptions,
)
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope, load_envelope
from shared.db.engine import Database
from shared.db.uow import UnitOfWork, hold_sends, release_sends, snapshot_key
from shared.messaging import deadletter, inbox
from shared.messaging.app import event_publisher, make_celery, recipients, send_event
from shared.messaging.delivery import AckBatcher, record_acks
from shared.messaging.errors import SNAPSHOTS_OF, DomainError, is_transient, problem_reply
from shared.messaging.outbox import prune_published
from shared.messaging.snapshots import Snapshots, touch
from shared.messaging.tables import read_model_versions

log = logging.getLogger(__name__)

CommandHandler = Callable[[UnitOfWork, Envelope, dict[str, Any]], dict[str, Any]]
QueryHandler = Callable[[Session, Envelope, dict[str, Any]], dict[str, Any]]
EventHandler = Callable[[UnitOfWork, Envelope, dict[str, Any]], None]

INBOX_RETENTION = timedelta(days=30)
# A message that asks to be retried later this many times is stuck, not early: bury it.
MAX_RETRY_LATER = 300
# An event that arrived before the one it follows is retried this many times, briefly; then it
# is set aside unacknowledged, and its sender's re-send brings it back (shared.messaging.delivery).
EARLY_EVENT_RETRIES = 8
# A bundle that failed for a transient reason (a deadlock, the database away) is tried again,
# whole, this many times, soon; then its events go one by one, each with its own retries.
BUNDLE_RETRIES = 3
BUNDLE_RETRY_SECONDS = 0.05


class PermanentMessageError(Exception):
    """The message itself is unusable (malformed, unknown type): retrying cannot help."""


class RetryLater(Exception):
    """Raised by a job to be run again after ``countdown`` seconds (its own retry policy)."""

    def __init__(self, countdown: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown = countdown


JobHandler = Callable[[Database, Envelope, dict[str, Any]], dict[str, Any]]
MaintenanceHandler = Callable[[UnitOfWork, Envelope, dict[str, Any]], dict[str, Any]]
RefusalHandler = Callable[[UnitOfWork, Envelope, dict[str, Any], DomainError], None]
# Locks, in one order, what a bundle's events (their payloads) will change, before any is handled.
BundleLock = Callable[[Session, list[dict[str, Any]]], None]


class ServiceRuntime:
    """Everything one service's worker process holds; built at start-up, never at import."""

    def __init__(self, service: str, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.app: Celery = make_celery(settings, service)
        self.publish = event_publisher(self.app, origin=service, duplicate=settings.duplicate_delivery)
        self.acks = AckBatcher(self._send_acks, service)
        self._db: Database | None = None
        self._db_pid = 0
        self._event_handlers: dict[str, EventHandler] = {}
        self._bundle_lock: BundleLock | None = None
        # The read models this service publishes; its tasks module declares them.
        self.snapshots = Snapshots()
        # A countdown longer than the visibility timeout would let Redis hand the waiting
        # message to a second worker (Celery's Redis caveats): stay well below it.
        visibility = settings.broker_transport_options.get("visibility_timeout")
        self.retry_cap = min(60.0, float(visibility) / 4) if isinstance(visibility, int | float) else 60.0
        self._register_event_task()
        self._register_bundle_task()
        self._register_prune_task()
        self.maintenance(ACKS[service])(self._record_acks)
        if service in EXPORTS:
            self.query(EXPORTS[service])(self._export)

    @property
    def db(self) -> Database:
        """This service's database; recreated after a fork so no connection is shared."""
        if self._db is None or self._db_pid != os.getpid():
            self._db = Database(
                self.settings.database_url(self.service), snapshots=self.snapshots, publish=self.publish.many
            )
            self._db_pid = os.getpid()
        return self._db

    # -- registration -------------------------------------------------------------

    def command(
        self, spec: TaskSpec, on_refusal: RefusalHandler | None = None
    ) -> Callable[[CommandHandler], CommandHandler]:
        """Register a command handler: one transaction, inbox-deduplicated, replies stored.

        ``on_refusal`` runs when the handler raises a :class:`DomainError`, after its effects
        were rolled back and in the transaction that records the refusal (an audit trail of
        refused attempts).
        """
        self._check_spec(spec, "command")

        def register(handler: CommandHandler) -> CommandHandler:
            def body(envelope: Envelope) -> dict[str, Any]:
                payload = self._load_payload(spec.payload, envelope)
                refused = (lambda uow, exc: on_refusal(uow, envelope, payload, exc)) if on_refusal else None
                return self._once(spec.name, envelope, lambda uow: handler(uow, envelope, payload), refused)

            self._task(spec.name, body, ignore_result=False, sends_after_reply=True)
            return handler

        return register

    def query(self, spec: TaskSpec) -> Callable[[QueryHandler], QueryHandler]:
        """Register a read-only query handler; its transaction is always rolled back."""
        self._check_spec(spec, "query")

        def register(handler: QueryHandler) -> QueryHandler:
            def body(envelope: Envelope) -> dict[str, Any]:
                payload = self._load_payload(spec.payload, envelope)
                with self.db.uow() as uow:
                    try:
                        return handler(uow.session, envelope, payload)
                    except DomainError as exc:
                        return exc.reply()

            self._task(spec.name, body, ignore_result=False)
            return handler

        return register

    def maintenance(self, spec: TaskSpec) -> Callable[[MaintenanceHandler], MaintenanceHandler]:
        """Register a periodic task: one transaction, no inbox (running it twice is harmless)."""
        self._check_spec(spec, "maintenance")

        def register(handler: MaintenanceHandler) -> MaintenanceHandler:
            def body(envelope: Envelope) -> dict[str, Any]:
                payload = self._load_payload(spec.payload, envelope)
                with self.db.uow() as uow:
                    result = handler(uow, envelope, payload)
                    uow.commit()
                return result

            self._task(spec.name, body, ignore_result=True)
            return handler

        return register

    def job(self, spec: TaskSpec) -> Callable[[JobHandler], JobHandler]:
        """Register a job that manages its own transactions and retries (raise RetryLater).

        A job must be idempotent by its own state (the payment state machine, for one): it
        may run again after a crash, and it records its progress as it goes.
        """
        self._check_spec(spec, "job")

        def register(handler: JobHandler) -> JobHandler:
            def body(envelope: Envelope) -> dict[str, Any]:
                payload = self._load_payload(spec.payload, envelope)
                return handler(self.db, envelope, payload)

            self._task(spec.name, body, ignore_result=True)
            return handler

        return register

    def on_event(self, event_name: str) -> Callable[[EventHandler], EventHandler]:
        """Register this service's handler of one event it subscribes to."""
        if event_name not in {e.name for e in subscriptions(self.service)}:
            raise ValueError(f"{self.service} is not a subscriber of {event_name} in shared.contracts")

        def register(handler: EventHandler) -> EventHandler:
            self._event_handlers[event_name] = handler
            return handler

        return register

    def lock_for_bundles(self, lock: BundleLock) -> None:
        """Have each bundle of events lock, in one order and first, the rows its events will
        change (a ledger's accounts): two bundles then never wait for each other crosswise."""
        self._bundle_lock = lock

    # -- the shared consumer path -----------------------------------------------------

    def _check_spec(self, spec: TaskSpec, kind: str) -> None:
        if spec.service != self.service or spec.kind != kind:
            raise ValueError(f"{spec.name} is not a {kind} of {self.service}")

    @staticmethod
    def _load_payload(schema: type[Any], envelope: Envelope) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = instances.schema(schema).load(envelope.payload)
        except ValidationError as exc:
            raise PermanentMessageError(f"invalid {envelope.type} payload: {exc.messages}") from exc
        return loaded

    def _register_event_task(self) -> None:
        def body(envelope: Envelope) -> dict[str, Any]:
            handler, payload = self._handler_of(envelope)

            def effect(uow: UnitOfWork) -> dict[str, Any]:
                handler(uow, envelope, payload)
                return {"handled": envelope.type}

            return self._once(handle_event_task(self.service), envelope, effect)

        self._task(handle_event_task(self.service), body, ignore_result=True)

    def _register_bundle_task(self) -> None:
        """A bundle of events one commit sent this service: taken in one transaction, each
        event recorded in the inbox and acknowledged on its own; a bundle that cannot be taken
        whole (an event early, malformed, a handler failing) is sent back as single events,
        which take the one-by-one path with its retries and dead letters."""
        runtime = self
        single = handle_event_task(self.service)

        @self.app.task(name=handle_events_task(self.service), bind=True, ignore_result=True, max_retries=None)
        def task(self: Task, raws: list[Any], origin: str | None = None) -> None:
            try:
                handled = runtime._handle_bundle(raws, single)
            except Exception as exc:
                if is_transient(exc) and self.request.retries < BUNDLE_RETRIES:
                    # A deadlock with another bundle (PostgreSQL aborted this one): again, whole, soon.
                    delay = backoff.full_jitter(BUNDLE_RETRY_SECONDS, self.request.retries, 1.0)
                    log.info(
                        "a bundle of %d event(s) for %s again in %.2fs: %s", len(raws), runtime.service, delay, exc
                    )
                    raise self.retry(exc=exc, countdown=delay) from exc
                log.info("a bundle of %d event(s) for %s goes one by one: %s", len(raws), runtime.service, exc)
                try:
                    for raw in raws:
                        send_event(runtime.app, runtime.service, raw, origin)
                except Exception as send_exc:
                    if not is_transient(send_exc) or self.request.retries >= runtime.settings.task_max_retries:
                        raise  # unacknowledged, so each event's sender sends it again after its deadline
                    delay = backoff.full_jitter(
                        runtime.settings.retry_backoff_seconds, self.request.retries, runtime.retry_cap
                    )
                    raise self.retry(exc=send_exc, countdown=delay) from send_exc
                return
            if origin:
                for message_id in handled:
                    runtime.acks.ack(origin, message_id)

    def _handle_bundle(self, raws: list[Any], task_name: str) -> list[str]:
        """Take a bundle of events in one transaction (their snapshots coalesce in its commit);
        the ids of every event in it, duplicates included (all may be acknowledged)."""
        events = [(envelope, *self._handler_of(envelope)) for envelope in map(load_envelope, raws)]
        with self.db.uow() as uow:
            results = {envelope.message_id: {"handled": envelope.type} for envelope, _, _ in events}
            fresh = inbox.claim_many(uow.session, results, task_name)
            if self._bundle_lock is not None:
                self._bundle_lock(uow.session, [p for e, _, p in events if e.message_id in fresh])
            for envelope, handler, payload in events:
                if envelope.message_id in fresh:
                    handler(uow, envelope, payload)
                    # The next event reads the rows afresh, as in a transaction of its own.
                    uow.session.flush()
                    uow.session.expire_all()
            skipped = len(events) - len(fresh)
            if skipped:
                log.info("%d duplicate event(s) of a bundle ignored by %s", skipped, self.service)
            self._maybe_fault(task_name)
            uow.commit()
        return [envelope.message_id for envelope, _, _ in events]

    def _handler_of(self, envelope: Envelope) -> tuple[EventHandler, dict[str, Any]]:
        """The handler of an event this service subscribes to, and its payload, checked."""
        handler = self._event_handlers.get(envelope.type)
        if handler is None or envelope.type not in EVENTS:
            raise PermanentMessageError(f"{self.service} has no handler for {envelope.type}")
        return handler, self._load_payload(EVENTS[envelope.type].payload, envelope)

    def _send_acks(self, origin: str, acks: list[dict[str, str]]) -> None:
        spec = ACKS[origin]
        envelope = Envelope(type=spec.name, payload={"acks": acks}, actor=SYSTEM_ACTOR)
        self.app.send_task(spec.name, args=[envelope.to_dict()], queue=queue_of(origin), ignore_result=True)

    @staticmethod
    def _record_acks(uow: UnitOfWork, _envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
        done = record_acks(uow.session, payload["acks"], lambda event_type: len(recipients({"type": event_type})))
        return {"delivered": done}

    def publish_documents(self) -> None:
        """Publish each document this service keeps (the policy, the caps...) that was never
        published, so the gateway can show the defaults before anyone changes them."""
        documents = [m.kind for m in self.snapshots.models.values() if m.table is None]
        if not documents:
            return
        with self.db.uow() as uow:
            published = set(
                uow.session.scalars(select(read_model_versions.c.kind).where(read_model_versions.c.kind.in_(documents)))
            )
            for kind in documents:
                if kind not in published:
                    touch(uow.session, kind, kind)
            uow.commit()

    def _export(self, session: Session, _envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
        if payload["kind"] not in self.snapshots.models:
            raise PermanentMessageError(f"{self.service} publishes no {payload['kind']} read model")
        return {
            "status": 200,
            "body": self.snapshots.export(session, payload["kind"], payload["after"], payload["limit"]),
        }

    def _register_prune_task(self) -> None:  # the one maintenance task every service has
        def body(_envelope: Envelope) -> dict[str, Any]:
            with self.db.uow() as uow:
                handled = inbox.prune(uow.session, INBOX_RETENTION)
                published = prune_published(uow.session, INBOX_RETENTION)
                uow.commit()
            return {"inbox": handled, "outbox": published}

        self._task(prune_messages_task(self.service), body, ignore_result=True)

    def _once(
        self,
        task_name: str,
        envelope: Envelope,
        effect: Callable[[UnitOfWork], dict[str, Any]],
        on_refusal: Callable[[UnitOfWork, DomainError], None] | None = None,
    ) -> Any:
        """Run ``effect`` at most once per message id, with the inbox row in its transaction."""
        with self.db.uow() as uow:
            # Claim first: a concurrent duplicate waits at the claim rather than doing the work twice.
            if not inbox.claim(uow.session, envelope.message_id, task_name):
                log.info("duplicate %s %s ignored", task_name, envelope.message_id)
                return inbox.stored_result(uow.session, envelope.message_id)
            try:
                reply = _with_snapshots(effect(uow), uow.publish_changes())
                # Kept without its snapshots (half a run's reply): they serve the first answer's
                # early projection, and the projector takes the same ones from the outbox.
                inbox.set_result(uow.session, envelope.message_id, _without_snapshots(reply))
            except DomainError as exc:
                # A refusal is an answer too: record it (without the effects) so a
                # redelivery gets the same answer.
                uow.rollback()
                reply = exc.reply()
                if on_refusal is not None:
                    on_refusal(uow, exc)
                try:
                    inbox.record(uow.session, envelope.message_id, task_name, reply)
                except IntegrityError:
                    uow.rollback()
                    return inbox.stored_result(uow.session, envelope.message_id)
            self._maybe_fault(task_name)
            uow.commit()  # sends what it emitted, straight after the commit
        return reply

    def _maybe_fault(self, task_name: str) -> None:
        delay = self.settings.fault_sleep.get(task_name)
        if delay:
            log.warning("FAULT INJECTION: %s sleeping %.1fs before commit (pid %s)", task_name, delay, os.getpid())
            time.sleep(delay)

    def _task(
        self,
        name: str,
        body: Callable[[Envelope], dict[str, Any]],
        *,
        ignore_result: bool,
        sends_after_reply: bool = False,
    ) -> None:
        """Register a task. ``sends_after_reply`` (a command's): what its commit emitted is sent
        once its reply is stored, so the reply is not queued behind the messages to the others."""
        if sends_after_reply:
            body = _holding_sends(body)
        runtime = self
        early_events = name == handle_event_task(self.service)
        base = _SendsAfterReply if sends_after_reply else Task

        @self.app.task(name=name, bind=True, ignore_result=ignore_result, max_retries=None, base=base)
        def task(self: Task, raw: dict[str, Any], origin: str | None = None) -> Any:
            # ``origin``: the service whose outbox sent this; it hears once the effect is done.
            def done(result: Any) -> Any:
                if origin and isinstance(raw, dict) and "message_id" in raw:
                    runtime.acks.ack(origin, str(raw["message_id"]))
                return result

            try:
                envelope = load_envelope(raw)
                return done(body(envelope))
            except RetryLater as exc:
                if early_events and origin and self.request.retries >= EARLY_EVENT_RETRIES:
                    log.info("%s set aside unacknowledged (its sender will send it again): %s", name, exc)
                    return None
                if self.request.retries >= MAX_RETRY_LATER:
                    runtime._bury(
                        name, raw, f"gave up after {self.request.retries} retries: {exc}", self.request.retries
                    )
                    return done(problem_reply(500, "internal-error", "The service could not complete the request."))
                countdown = backoff.exponential(exc.countdown, min(self.request.retries, 5), runtime.retry_cap)
                log.info("%s retry in %.2fs: %s", name, countdown if early_events else exc.countdown, exc)
                raise self.retry(
                    exc=exc, countdown=countdown if early_events else exc.countdown, max_retries=None
                ) from exc
            except (ValidationError, PermanentMessageError) as exc:
                runtime._bury(name, raw, f"permanent: {exc}", self.request.retries + 1)
                return done(problem_reply(400, "malformed-message", str(exc)))
            except Exception as exc:
                if is_transient(exc) and self.request.retries >= runtime.settings.task_max_retries and origin:
                    # A database or broker away longer than the retries last: the sender sends it
                    # again after its deadline, when it may be back. Burying it would need an operator.
                    log.warning("%s still failing (%s); set aside for its sender's re-send", name, exc)
                    return None
                if is_transient(exc) and self.request.retries < runtime.settings.task_max_retries:
                    delay = backoff.full_jitter(
                        runtime.settings.retry_backoff_seconds, self.request.retries, runtime.retry_cap
                    )
                    log.warning(
                        "%s transient failure, retry %d in %.2fs: %s", name, self.request.retries + 1, delay, exc
                    )
                    raise self.retry(exc=exc, countdown=delay) from exc
                log.exception("%s failed for good; dead-lettered", name)
                runtime._bury(name, raw, f"{type(exc).__name__}: {exc}", self.request.retries + 1)
                return done(problem_reply(500, "internal-error", "The service could not complete the request."))

    def _bury(self, task_name: str, raw: Any, error: str, attempts: int) -> None:
        """Keep the message for an operator, and raise an alert about it in the same commit."""
        try:
            with self.db.uow() as uow:
                deadletter.bury_and_alert(uow, self.service, task_name, raw, error, attempts)
                uow.commit()
        except Exception:
            # Without a database we cannot even bury it: let the broker redeliver it later.
            log.exception("could not dead-letter %s", task_name)
            raise


class _SendsAfterReply(Task):
    """A task whose held sends go after its result is stored (Celery stores it, then calls this)."""

    def after_return(self, status: str, retval: Any, *args: Any, **kwargs: Any) -> None:
        release_sends(carried_snapshots(retval))


def _holding_sends(body: Callable[[Envelope], dict[str, Any]]) -> Callable[[Envelope], dict[str, Any]]:
    """Hold the body's post-commit sends; an answer releases them after it is stored
    (:class:`_SendsAfterReply`), an error at once, before any retry."""

    def held(envelope: Envelope) -> dict[str, Any]:
        hold_sends()
        try:
            return body(envelope)
        except BaseException:
            release_sends()
            raise

    return held


def carried_snapshots(reply: Any) -> set[tuple[str, str]]:
    """The snapshots (type, id) a command's reply carries for the gateway to project."""
    if not isinstance(reply, dict):
        return set()
    return {snapshot_key(s["type"], s["payload"]) for s in reply.get("snapshots") or ()}


def _without_snapshots(reply: Any) -> Any:
    if isinstance(reply, dict) and "snapshots" in reply:
        return {k: v for k, v in reply.items() if k != "snapshots"}
    return reply


def _with_snapshots(reply: Any, changed: list[Envelope]) -> Any:
    """A command's reply with the snapshots of what it changed (those it names, if it names
    them): the gateway projects them before it answers, so a user reads their own write."""
    if not isinstance(reply, dict):
        return reply
    if SNAPSHOTS_OF in reply:
        reply = dict(reply)
        wanted = set(reply.pop(SNAPSHOTS_OF))
        changed = [e for e in changed if e.type in wanted]
    if changed and "status" in reply:
        reply = {**reply, "snapshots": [{"type": e.type, "payload": e.payload} for e in changed]}
    return reply
