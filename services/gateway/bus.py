"""The gateway's side of the bus: send a command or query, wait briefly for its reply.

How a reply reaches the waiting request depends on the result backend:

- **Redis** (production): Celery's Redis backend stores a task's result with ``SET`` and
  ``PUBLISH``es the same value on a channel named like the key, ``celery-task-meta-<task id>``
  (``celery/backends/redis.py``, ``RedisBackend._set``). Each gateway process keeps ONE
  :class:`ReplyListener`, a daemon thread holding one pub/sub connection subscribed to the
  pattern ``celery-task-meta-*``, which wakes the request thread waiting for that id. A
  request registers its waiter before it sends, so no reply can slip between send and wait;
  on timeout, or when the listener (re)subscribed meanwhile, one ``MGET`` of the result keys
  is the safety net. No polling.
- **Database** (the embedded SQLite default): the result table is polled every few
  milliseconds; there is no channel to listen on.

Queries (``ask``) carry a Celery ``expires`` equal to the wait, so a worker does not run a
query nobody waits for any more, and their stored replies are deleted once read, or, when the
waiter gave up, as soon as the worker stores them (the listener deletes the ones it was told
to forget): nobody reads a query's result twice, and Redis need not keep it for an hour.

``Idempotency-Key`` requests (``services.gateway.idempotency``) bind the message id of their
command before it is sent: they put a :class:`Binding` on ``flask.g`` which :meth:`Bus.send`
uses instead of a fresh id, records whether the command may have reached the broker, and, in
a retry whose first attempt's outcome is unknown, honours by never sending the command again.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery import Celery, states
from celery.result import AsyncResult
from flask import g, has_app_context

from shared import backoff
from shared.contracts.catalog import TaskSpec
from shared.contracts.envelope import Actor, Envelope, load_envelope
from shared.db.engine import Database
from shared.messaging.app import send_command
from shared.messaging.outbox import add_to_outbox

log = logging.getLogger(__name__)

INTERNAL_ERROR_REPLY: dict[str, Any] = {
    "status": 500,
    "problem": {
        "type": "internal-error",
        "title": "internal error",
        "detail": "The service could not complete the request.",
    },
}
# How long the listener keeps deleting the replies of queries whose waiter gave up. A worker
# stores a REVOKED result when it meets an expired query, however late that is; past this,
# a reply that comes anyway lives its normal result_expires.
ABANDONED_QUERY_RETENTION_SECONDS = 600.0
MAX_ABANDONED_QUERIES = 100_000
# The listener wakes at least this often to expire abandoned queries and notice a stop.
LISTENER_TICK_SECONDS = 1.0
MAX_RECONNECT_DELAY_SECONDS = 5.0
BINDING_ATTRIBUTE = "idempotency_binding"


@dataclass
class Binding:
    """An ``Idempotency-Key`` request's hold on the message id of its command (kept on ``flask.g``).

    ``replay`` means an earlier attempt with this key may have sent the command already: the
    bus then never sends it, it only looks for its reply. ``sent`` becomes true as soon as the
    command may have reached the broker; until then the key can safely be given back.
    """

    message_id: str
    replay: bool = False
    used: bool = False
    sent: bool = False


def current_binding() -> Binding | None:
    """The binding of this request, if it has one (``Idempotency-Key`` requests only)."""
    if not has_app_context():
        return None
    binding: Binding | None = g.get(BINDING_ATTRIBUTE)
    return binding


def _reply_of(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """A service's reply from a stored task state, or None while it has none."""
    if not meta:
        return None
    state = meta.get("status")
    if state == states.SUCCESS:
        value: dict[str, Any] = meta["result"]
        return value
    if state == states.FAILURE:
        return dict(INTERNAL_ERROR_REPLY)
    return None  # PENDING, RETRY, STARTED, REVOKED: no reply (yet)


def _no_result_subscription(producer: Any, task_id: str) -> None:
    """Replaces ``RedisBackend.on_task_call`` on the gateway's backends (see :meth:`Bus._quiet_backend`)."""


class _Waiter:
    """One request thread waiting for the replies of some message ids."""

    def __init__(self, message_ids: list[str]) -> None:
        self.message_ids = message_ids
        self.replies: dict[str, dict[str, Any]] = {}
        self.fetched: set[str] = set()  # replies read from their keys, not delivered by the listener
        self.event = threading.Event()
        self.recheck = False  # the listener (re)subscribed: a reply may have been missed

    def missing(self) -> list[str]:
        return [m for m in self.message_ids if m not in self.replies]


class ReplyListener:
    """One pub/sub connection per process, pattern-subscribed to every task result channel.

    Thread-safe; created lazily by :class:`Bus` in the process that uses it (gunicorn forks its
    workers after ``create_app``, and a thread does not survive a fork). The thread reconnects
    with backoff for as long as the process lives.
    """

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.client = backend.client  # a redis-py client: its connection pool is thread-safe
        self._prefix: bytes = backend.task_keyprefix
        self._pattern = self._prefix + b"*"
        self._lock = threading.Lock()
        self._waiters: dict[str, list[_Waiter]] = {}
        # Queries whose stored reply must be deleted when it comes, with when to stop waiting for it.
        self._forget: dict[str, float] = {}
        self._to_delete: set[bytes] = set()
        self._subscribed = False
        self._subscriptions = 0
        # Failed reconnects in a row, and when the outage began (the listener thread's own).
        self._failures = 0
        self._outage_started = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pettycash-reply-listener", daemon=True)
        self._thread.start()

    def key(self, message_id: str) -> bytes:
        """The result key (and channel) of a message."""
        return self._prefix + message_id.encode()

    def register(self, message_ids: list[str], forget: bool = False, keep_for: float = 0.0) -> _Waiter:
        """Start waiting for these ids; call before sending. ``forget``: delete their replies once
        stored, for up to ``keep_for`` seconds plus the retention of abandoned queries."""
        waiter = _Waiter(message_ids)
        with self._lock:
            for message_id in message_ids:
                self._waiters.setdefault(message_id, []).append(waiter)
            if forget:
                until = time.monotonic() + keep_for + ABANDONED_QUERY_RETENTION_SECONDS
                for message_id in message_ids:
                    self._forget[message_id] = until
                self._cap_forget()
        return waiter

    def unregister(self, waiter: _Waiter) -> None:
        """Stop waiting (whatever arrived or not)."""
        with self._lock:
            for message_id in waiter.message_ids:
                waiters = self._waiters.get(message_id)
                if waiters is None:
                    continue
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    del self._waiters[message_id]

    def forgotten(self, message_ids: list[str]) -> None:
        """These replies were deleted by their reader: nothing left to forget."""
        with self._lock:
            for message_id in message_ids:
                self._forget.pop(message_id, None)

    def wait(self, waiter: _Waiter, timeout: float, fetch_first: bool) -> list[dict[str, Any] | None]:
        """The replies of ``waiter``'s ids, waiting at most ``timeout`` seconds for all of them."""
        deadline = time.monotonic() + timeout
        if fetch_first or not self._subscribed:
            self._fetch(waiter)
        while True:
            with self._lock:
                waiter.event.clear()
                recheck, waiter.recheck = waiter.recheck, False
                missing = waiter.missing()
            if not missing:
                break
            if recheck:
                self._fetch(waiter)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # The safety net: a reply published while the subscription was down is only in the key.
                self._fetch(waiter)
                break
            waiter.event.wait(remaining)
        return [waiter.replies.get(m) for m in waiter.message_ids]

    def fetch(self, message_id: str) -> dict[str, Any] | None:
        """The stored reply of one message (one GET)."""
        return _reply_of(self._decode(self.client.get(self.key(message_id))))

    def _fetch(self, waiter: _Waiter) -> None:
        missing = waiter.missing()
        if not missing:
            return
        values = self.client.mget([self.key(m) for m in missing])
        with self._lock:
            for message_id, value in zip(missing, values, strict=True):
                reply = _reply_of(self._decode(value))
                if reply is not None and message_id not in waiter.replies:
                    waiter.replies[message_id] = reply
                    waiter.fetched.add(message_id)

    def _decode(self, value: bytes | None) -> dict[str, Any] | None:
        if value is None:
            return None
        meta: dict[str, Any] = self._backend.decode(value)
        return meta

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread and its subscription (it is a daemon: a process that exits needs no call)."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the listener thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            pubsub = None
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=False)
                pubsub.psubscribe(self._pattern)
                self._listen(pubsub)
            except Exception as exc:  # any failure leaves the subscription in doubt: start over
                self._subscribed = False
                self._stopping.wait(self._reconnect_delay(exc))
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # closing a broken connection may fail too; it is dropped anyway
                        log.debug("reply listener: close failed", exc_info=True)

    def _listen(self, pubsub: Any) -> None:
        """Take messages as they come, sweeping and deleting forgotten results every tick."""
        next_sweep = time.monotonic() + LISTENER_TICK_SECONDS
        while not self._stopping.is_set():
            message = pubsub.get_message(timeout=LISTENER_TICK_SECONDS)
            while message is not None:
                if self._handle(message):  # (re)subscribed
                    self._on_resubscribed()
                message = pubsub.get_message(timeout=0)
            if time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + LISTENER_TICK_SECONDS
            self._delete_forgotten()

    def _on_resubscribed(self) -> None:
        if self._subscriptions > 1:  # after our reconnect, or one redis-py made by itself
            log.warning(
                "reply listener: subscribed again (pid %s) after %d failed attempts, %.1fs",
                os.getpid(),
                self._failures,
                time.monotonic() - self._outage_started if self._failures else 0.0,
            )
        self._failures = 0

    def _reconnect_delay(self, exc: Exception) -> float:
        """Say the subscription was lost (once per outage) and how long to wait before the next attempt."""
        if self._failures == 0:
            self._outage_started = time.monotonic()
            log.warning("reply listener: lost its Redis subscription (%s: %s); reconnecting", type(exc).__name__, exc)
        else:
            log.debug("reply listener: reconnect attempt %d failed: %s", self._failures, exc)
        self._failures += 1
        # Exponential backoff with jitter, so gateway processes do not reconnect in step.
        return backoff.exponential(0.05, self._failures, MAX_RECONNECT_DELAY_SECONDS) * random.uniform(0.5, 1.0)  # noqa: S311

    def _handle(self, message: dict[str, Any]) -> bool:
        """Dispatch one pub/sub message; True when it confirms a (re)subscription."""
        kind = message.get("type")
        if kind == "psubscribe":
            self._on_subscribed()
            return True
        if kind == "pmessage" and message["channel"].startswith(self._prefix):
            self._deliver(message["channel"], message["data"])
        return False

    def _deliver(self, channel: bytes, data: bytes) -> None:
        """Wake the waiters of a stored result, and delete it if it is a query's."""
        message_id = channel[len(self._prefix) :].decode(errors="replace")
        with self._lock:
            waiters = self._waiters.get(message_id)
            forget = message_id in self._forget
        if not waiters and not forget:
            return  # another process's reply (or another database's: channels span them all)
        try:
            meta = self._decode(data)
        except Exception:  # not Celery's: say so, but it must not cost the subscription
            log.warning("reply listener: undecodable result for %s", message_id, exc_info=True)
            return
        if meta is None or meta.get("status") not in states.READY_STATES:
            return  # RETRY and the like: the final state follows
        reply = _reply_of(meta)
        with self._lock:
            if reply is not None:
                for waiter in self._waiters.get(message_id, ()):
                    waiter.replies[message_id] = reply
                    waiter.event.set()
            if self._forget.pop(message_id, None) is not None:
                self._to_delete.add(channel)

    def _on_subscribed(self) -> None:
        """Subscribed (again): replies published while we were not may only be in their keys."""
        self._subscribed = True
        with self._lock:
            for waiters in self._waiters.values():
                for waiter in waiters:
                    waiter.recheck = True
                    waiter.event.set()
        self._subscriptions += 1
        if self._subscriptions == 1:
            log.info("reply listener: subscribed to %s (pid %s)", self._pattern.decode(), os.getpid())

    def _sweep(self) -> None:
        """Drop abandoned queries past their retention; delete their keys in case a message was missed."""
        now = time.monotonic()
        with self._lock:
            expired = [m for m, until in self._forget.items() if until <= now]
            for message_id in expired:
                del self._forget[message_id]
                self._to_delete.add(self.key(message_id))

    def _cap_forget(self) -> None:
        # Called with the lock held. Bounded memory if workers stay away for long.
        while len(self._forget) > MAX_ABANDONED_QUERIES:
            oldest = next(iter(self._forget))
            del self._forget[oldest]
            self._to_delete.add(self.key(oldest))

    def _delete_forgotten(self) -> None:
        with self._lock:
            if not self._to_delete:
                return
            keys = list(self._to_delete)
        self.client.delete(*keys)  # a failure keeps them for the next round, after the reconnect
        with self._lock:
            self._to_delete.difference_update(keys)


class Bus:
    """Sends envelopes for the gateway and waits for their replies (see the module docstring)."""

    _process_lock = threading.Lock()

    def __init__(self, app: Celery, poll_seconds: float = 0.002, db: Database | None = None) -> None:
        self.app = app
        self.poll_seconds = poll_seconds
        # The gateway's database: a command sent is also kept in its outbox, so the relay sends
        # it again if no worker acknowledges it (a broker restart lost it); see _track.
        self.db = db
        backend_url = str(app.conf.result_backend or "")
        # rediss:// and redis+socket:// are the Redis backend too; sentinel:// keeps polling.
        self.listens = backend_url.startswith(("redis://", "rediss://", "redis+socket://", "unix://"))
        self._listener: ReplyListener | None = None
        self._listener_pid = 0

    # -- public API -----------------------------------------------------------------------

    def send(self, spec: TaskSpec, payload: dict[str, Any], actor: Actor, message_id: str | None = None) -> str:
        """Send a command or query; returns its message id (also its task id).

        Without ``message_id``, an ``Idempotency-Key`` request's bound id is used (once): in a
        retry whose first attempt may have sent it, nothing is sent again.
        """
        envelope, binding = self._envelope(spec, payload, actor, message_id)
        if binding is None or not binding.replay:
            self._publish(spec, envelope, binding)
        return str(envelope["message_id"])

    def reply(self, message_id: str) -> dict[str, Any] | None:
        """The reply of a message, if one has arrived (one lookup)."""
        if self.listens:
            return self._process_listener().fetch(message_id)
        return _reply_of(self._meta_from_database(message_id))

    def wait(self, message_ids: list[str], timeout: float) -> list[dict[str, Any] | None]:
        """Replies of several messages, waiting at most ``timeout`` seconds for all of them."""
        if not self.listens:
            return self._poll(message_ids, timeout)
        listener = self._process_listener()
        waiter = listener.register(message_ids)
        try:
            # Registered after sending (or by someone else): a reply may be stored already.
            return listener.wait(waiter, timeout, fetch_first=True)
        finally:
            listener.unregister(waiter)

    def ask(
        self, queries: list[tuple[TaskSpec, dict[str, Any]]], actor: Actor, timeout: float
    ) -> list[dict[str, Any] | None]:
        """Send several queries at once and wait for all; their results are then dropped from
        the backend (nobody reads a query's result twice, and Redis need not keep it an hour).

        Each query expires with the wait: a worker that meets it later does not run it.
        """
        envelopes = [Envelope(type=spec.name, payload=payload, actor=actor).to_dict() for spec, payload in queries]
        ids = [str(e["message_id"]) for e in envelopes]
        if not self.listens:
            for (spec, _), envelope in zip(queries, envelopes, strict=True):
                self._send_query(spec, envelope, timeout)
            replies = self._poll(ids, timeout)
            for message_id, reply in zip(ids, replies, strict=True):
                if reply is not None:
                    AsyncResult(message_id, app=self.app).forget()
            return replies
        listener = self._process_listener()
        # The listener deletes each reply as it is stored, also after we stop waiting.
        waiter = listener.register(ids, forget=True, keep_for=timeout)
        try:
            for (spec, _), envelope in zip(queries, envelopes, strict=True):
                self._send_query(spec, envelope, timeout)
            replies = listener.wait(waiter, timeout, fetch_first=False)
        finally:
            listener.unregister(waiter)
        # The listener deletes the replies it delivered; those read from their keys are ours to delete.
        fetched = sorted(waiter.fetched)
        if fetched:
            listener.client.delete(*[listener.key(m) for m in fetched])
            listener.forgotten(fetched)
        return replies

    def call(
        self,
        spec: TaskSpec,
        payload: dict[str, Any],
        actor: Actor,
        timeout: float,
        message_id: str | None = None,
    ) -> tuple[str, dict[str, Any] | None]:
        """Send and wait: the message id and its reply (None if it did not come in time).

        In an ``Idempotency-Key`` retry whose first attempt may have sent the command, nothing
        is sent: the answer is the reply stored for the bound id, if any (one lookup).
        """
        envelope, binding = self._envelope(spec, payload, actor, message_id)
        sent_id = str(envelope["message_id"])
        if binding is not None and binding.replay:
            return sent_id, self.reply(sent_id)
        if not self.listens:
            self._publish(spec, envelope, binding)
            return sent_id, self._poll([sent_id], timeout)[0]
        listener = self._process_listener()
        waiter = listener.register([sent_id])  # before sending: the reply cannot come first
        try:
            self._publish(spec, envelope, binding)
            return sent_id, listener.wait(waiter, timeout, fetch_first=False)[0]
        finally:
            listener.unregister(waiter)

    def close(self) -> None:
        """Stop this process's reply listener, if it runs (it is a daemon thread: exiting stops it too)."""
        with self._process_lock:
            if self._listener is not None and self._listener_pid == os.getpid():
                self._listener.stop()
            self._listener = None

    # -- health ---------------------------------------------------------------------------

    def ping_broker(self) -> None:
        """Raise unless the broker answers (one round trip on a pooled connection)."""
        with self.app.producer_or_acquire() as producer:
            self._probe(producer, strict=True)

    def ping_results(self) -> None:
        """Raise unless the result backend answers (Redis only; the database backend is local)."""
        if self.listens:
            self._process_listener().client.ping()

    # -- internals ------------------------------------------------------------------------

    def _envelope(
        self, spec: TaskSpec, payload: dict[str, Any], actor: Actor, message_id: str | None
    ) -> tuple[dict[str, Any], Binding | None]:
        binding = None
        if message_id is None:
            binding = current_binding()
            if binding is not None and not binding.used:
                binding.used = True  # one command per key: a second one in the request gets its own id
                message_id = binding.message_id
            else:
                binding = None
        envelope = Envelope(type=spec.name, payload=payload, actor=actor, message_id=message_id or str(uuid.uuid4()))
        return envelope.to_dict(), binding

    def _publish(self, spec: TaskSpec, envelope: dict[str, Any], binding: Binding | None) -> None:
        self._quiet_backend()
        origin = "gateway" if self.db is not None else None
        if binding is None:
            send_command(self.app, spec, envelope, origin)
        else:
            # A probe before the send, on the same pooled connection: if the probe fails, the
            # command was certainly not sent and its Idempotency-Key may be used again. Any
            # failure after it is ambiguous.
            with self.app.producer_or_acquire() as producer:
                self._probe(producer, strict=False)
                binding.sent = True
                send_command(self.app, spec, envelope, origin, producer=producer)
        self._track(envelope)

    def _track(self, envelope: dict[str, Any]) -> None:
        """Keep a sent command in the gateway's outbox, as published: until the service that
        owns it acknowledges it, the relay sends it again (the service's inbox makes a second
        copy harmless, and its reply lands under the same id). Recorded after the send, so a
        command the broker refused is never sent later behind the client's back."""
        if self.db is None:
            return
        try:
            with self.db.uow() as uow:
                add_to_outbox(uow.session, load_envelope(envelope), sent=True)
                uow.commit()
        except Exception:
            log.warning("could not track command %s for re-sending", envelope["message_id"], exc_info=True)

    def _send_query(self, spec: TaskSpec, envelope: dict[str, Any], timeout: float) -> None:
        self._quiet_backend()
        send_command(self.app, spec, envelope, expires=max(timeout, 0.001))

    @staticmethod
    def _probe(producer: Any, strict: bool) -> None:
        """One PING on the producer's own Redis connection pool; other transports: ``strict`` connects."""
        if producer.connection.transport.driver_type == "redis":
            producer.channel.client.ping()
        elif strict:
            producer.connection.ensure_connection(max_retries=1)

    def _quiet_backend(self) -> None:
        """Stop Celery subscribing this thread's result backend to every task it sends.

        ``send_task`` calls ``RedisBackend.on_task_call``, which SUBSCRIBEs a per-thread pub/sub
        connection to the task's channel for ``AsyncResult.get`` — which the gateway never calls
        (the listener delivers replies). Left alone, that costs a pub/sub connection per thread
        whose unread messages pile up in Redis, and with Redis down it retries for ~20 s before
        failing the request.
        """
        if not self.listens:
            return
        backend = self.app.backend  # one per thread
        if "on_task_call" not in vars(backend):
            backend.on_task_call = _no_result_subscription

    def warm(self) -> None:
        """Start this process's reply listener now rather than at its first command."""
        if self.listens:
            self._process_listener()

    def _process_listener(self) -> ReplyListener:
        """This process's listener, started by :meth:`warm` or on first use (never before gunicorn forks)."""
        pid = os.getpid()
        listener = self._listener
        if listener is not None and self._listener_pid == pid:
            return listener
        with self._process_lock:
            if self._listener is None or self._listener_pid != pid:
                # After a fork the parent's thread is gone from this process: start our own.
                self._listener = ReplyListener(self.app.backend)
                self._listener_pid = pid
            return self._listener

    def _meta_from_database(self, message_id: str) -> dict[str, Any] | None:
        result = AsyncResult(message_id, app=self.app)
        state = result.state
        if state == states.SUCCESS:
            return {"status": state, "result": result.result}
        return {"status": state}

    def _poll(self, message_ids: list[str], timeout: float) -> list[dict[str, Any] | None]:
        """The database backend has no channel: poll its table (one SELECT per message per round)."""
        deadline = time.monotonic() + timeout
        replies: list[dict[str, Any] | None] = [None] * len(message_ids)
        while True:
            for i, message_id in enumerate(message_ids):
                if replies[i] is None:
                    replies[i] = self.reply(message_id)
            if all(r is not None for r in replies) or time.monotonic() >= deadline:
                return replies
            time.sleep(self.poll_seconds)
