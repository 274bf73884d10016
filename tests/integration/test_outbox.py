"""The transactional outbox, its relays, held sends and built snapshots, on a database of their own."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.engine import Database
from shared.db.migrate import upgrade
from shared.db.uow import CARRIED_SNAPSHOT_HOLD_SECONDS, hold_sends, release_sends
from shared.messaging.outbox import unpublished_count
from shared.messaging.relay import relay_once
from shared.messaging.snapshots import Snapshots, built, touch
from tests.support import Proc, scalar, wait_for

RELAY_REDIS_DB = 14


def _event(i: int) -> Envelope:
    """A valid RequisitionSubmitted (the outbox checks contracts), numbered by its voucher."""
    payload = {
        "requisition_id": str(uuid.uuid4()),
        "voucher_no": f"T-{i}",
        "branch_id": "b1",
        "region_id": "r1",
        "origin": "branch",
        "requester_id": "u1",
        "amount": {"minor_units": 100 + i, "currency": "KES"},
        "category": "fuel",
        "urgent": False,
    }
    return Envelope(type="RequisitionSubmitted", payload=payload, actor=SYSTEM_ACTOR)


@pytest.fixture(scope="module")
def outbox_db(settings: Settings) -> Iterator[Database]:
    """A requisition-schema database used by nothing else, so no other relay touches it."""
    url = make_url(settings.database_url("requisition")).set(database="pettycash_test_outbox")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "pettycash_test_outbox" WITH (FORCE)'))
    admin.dispose()
    rendered = url.render_as_string(hide_password=False)
    upgrade("services.requisition", rendered)
    db = Database(rendered)
    yield db
    db.dispose()


def test_a_rolled_back_transaction_publishes_nothing(outbox_db: Database) -> None:
    with outbox_db.uow() as uow:
        uow.emit(_event(0))
        # The row is written in the commit's statement, with the change; leaving the block
        # without commit rolls back, and it never was.
        assert unpublished_count(uow.session) == 0

    sent: list[dict[str, Any]] = []
    assert relay_once(outbox_db, sent.extend) == 0
    assert sent == []
    assert scalar(outbox_db, "SELECT count(*) FROM outbox") == 0


def test_a_committed_event_is_published_once(outbox_db: Database) -> None:
    event = _event(1)
    with outbox_db.uow() as uow:
        uow.emit(event)
        uow.commit()

    sent: list[dict[str, Any]] = []
    assert relay_once(outbox_db, sent.extend) == 1
    assert relay_once(outbox_db, sent.extend) == 0
    assert [e["message_id"] for e in sent] == [event.message_id]


def test_two_relays_publish_every_event_exactly_once(
    outbox_db: Database, test_env: dict[str, str], tmp_path: Path
) -> None:
    broker = test_env["PETTYCASH_BROKER_URL"].rsplit("/", 1)[0] + f"/{RELAY_REDIS_DB}"
    queue = redis.Redis.from_url(broker)
    queue.flushdb()
    events = [_event(i) for i in range(600)]
    with outbox_db.uow() as uow:
        for event in events:
            uow.emit(event)
        uow.commit()

    env = dict(
        test_env,
        PETTYCASH_REQUISITION_DATABASE_URL=outbox_db.url,
        PETTYCASH_BROKER_URL=broker,
        PETTYCASH_RELAY_POLL_SECONDS="0.01",
        # Nothing consumes here, so nothing acknowledges: keep re-sends out of this count.
        PETTYCASH_REDELIVERY_SECONDS="3600",
    )
    relays = [Proc(f"relay-{i}", ["relay", "requisition"], env, tmp_path / f"relay-{i}.log").start() for i in (1, 2)]
    try:
        wait_for(lambda: scalar(outbox_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0, 30)
    finally:
        for relay in relays:
            relay.stop()

    # RequisitionSubmitted goes to the approval service's queue; nothing consumes this Redis db.
    # Each relay batch travels as bundles of events (a lone event as a single message).
    messages = [json.loads(raw) for raw in queue.lrange("approval", 0, -1)]
    assert {m["headers"]["task"] for m in messages} <= {"approval.handle_event", "approval.handle_events"}
    assert any(m["headers"]["task"] == "approval.handle_events" for m in messages)
    sent_ids = [envelope["message_id"] for m in messages for envelope in _envelopes_of(m)]
    assert len(sent_ids) == len(events)
    assert set(sent_ids) == {e.message_id for e in events}


def _envelopes_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelopes a Celery message on the queue carries: one event, or a bundle of them."""
    args = json.loads(base64.b64decode(message["body"]))[0]
    return args[0] if message["headers"]["task"].endswith(".handle_events") else [args[0]]


def test_held_sends_go_at_their_release_in_commit_order(outbox_db: Database) -> None:
    sent: list[dict[str, Any]] = []
    db = Database(outbox_db.url, publish=sent.extend)  # commits send, as a worker's do
    events = [_event(10), _event(11)]
    hold_sends()
    try:
        for event in events:
            with db.uow() as uow:
                uow.emit(event)
                uow.commit()
        assert sent == []  # committed (marked sent), and held
        assert scalar(outbox_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    finally:
        release_sends()
    assert [e["message_id"] for e in sent] == [e.message_id for e in events]
    release_sends()  # released already: nothing goes twice
    assert len(sent) == len(events)
    db.dispose()


def _snapshot(key: str) -> Envelope:
    """A valid RequisitionChanged: a read model's snapshot, as a command's reply may carry it."""
    at = "2026-12-08T09:00:00+00:00"
    payload = {
        "id": key,
        "version": 1,
        "at": at,
        "body": {"id": key},
        "branch_id": "b1",
        "region_id": "r1",
        "requester_id": "u1",
        "status": "submitted",
        "created_at": at,
    }
    return Envelope(type=catalog.REQUISITION_CHANGED.name, payload=payload, actor=SYSTEM_ACTOR)


def test_the_snapshots_a_reply_carries_go_to_the_projector_a_little_after_the_rest(outbox_db: Database) -> None:
    sent: list[tuple[float, str]] = []

    def publish(messages: list[dict[str, Any]]) -> None:
        sent.extend((time.monotonic(), m["message_id"]) for m in messages)

    db = Database(outbox_db.url, publish=publish)
    event, carried, other = _event(13), _snapshot("r-carried"), _snapshot("r-other")
    hold_sends()
    with db.uow() as uow:
        for envelope in (event, carried, other):
            uow.emit(envelope)
        uow.commit()
    released = time.monotonic()
    release_sends({(carried.type, "r-carried")})
    assert [m for _, m in sent] == [event.message_id, other.message_id]  # at once, in commit order
    wait_for(lambda: len(sent) == 3, timeout=5)
    at, message_id = sent[2]
    assert message_id == carried.message_id
    assert at - released >= CARRIED_SNAPSHOT_HOLD_SECONDS
    db.dispose()


def test_a_held_send_that_fails_at_its_release_is_left_to_the_relay(outbox_db: Database) -> None:
    def broker_away(_messages: list[dict[str, Any]]) -> None:
        raise ConnectionError("broker away")

    db = Database(outbox_db.url, publish=broker_away)
    event = _event(12)
    hold_sends()
    with db.uow() as uow:
        uow.emit(event)
        uow.commit()
    release_sends()
    sent: list[dict[str, Any]] = []
    assert relay_once(outbox_db, sent.extend) == 1
    assert [e["message_id"] for e in sent] == [event.message_id]
    db.dispose()


def test_a_snapshot_the_use_case_built_is_published_unless_its_aggregate_changes_again(
    outbox_db: Database,
) -> None:
    built_again: list[list[Any]] = []

    def build(_session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
        built_again.append(list(ids))
        return [{"id": key, "body": {"from": "queries"}} for key in ids]

    models = Snapshots()
    models.model("payment_run", catalog.PAYMENT_RUN_CHANGED, build)
    keys = {name: str(uuid.uuid4()) for name in ("kept", "unbuilt", "changed_again")}
    with outbox_db.uow() as uow:
        for key in keys.values():
            touch(uow.session, "payment_run", key)
        built(uow.session, "payment_run", keys["kept"], {"id": keys["kept"], "body": {"from": "use case"}})
        built(uow.session, "payment_run", keys["changed_again"], {"id": keys["changed_again"], "body": {}})
        touch(uow.session, "payment_run", keys["changed_again"])
        published = {e.payload["id"]: e.payload for e in models.publish_touched(uow.session)}
    assert built_again == [sorted([keys["unbuilt"], keys["changed_again"]])]
    assert published[keys["kept"]]["body"] == {"from": "use case"}
    assert published[keys["changed_again"]]["body"] == {"from": "queries"}
    assert all(p["version"] == 1 for p in published.values())
