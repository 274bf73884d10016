"""The transactional outbox and its relays, on a database of their own."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.engine import Database
from shared.db.migrate import upgrade
from shared.messaging.outbox import unpublished_count
from shared.messaging.relay import relay_once
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
