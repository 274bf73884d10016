"""Queries through ``Bus.ask``: their replies never outstay their reading, and one nobody waits for is not run.

The bus runs in this process here (as in a gateway), on the rig's Redis, against its real worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from services.gateway.bus import Bus
from shared.config import load_settings
from shared.contracts.catalog import TASKS_BY_NAME
from shared.contracts.envelope import SYSTEM_ACTOR
from shared.messaging.app import make_celery
from tests.integration.gateway_path.rig import Rig
from tests.support import wait_for

# Any query the requisition service answers; the reply's content does not matter here.
QUERY = next(s for s in TASKS_BY_NAME.values() if s.kind == "query" and s.service == "requisition")
PAYLOAD = {"kind": "requisition", "limit": 1}


@pytest.fixture
def bus(rig: Rig) -> Iterator[Bus]:
    bus = Bus(make_celery(load_settings(rig.worker_env()), "gateway"))
    yield bus
    bus.close()
    if rig.worker is None:
        rig.start_worker()


def result_keys(rig: Rig) -> set[bytes]:
    return set(rig.redis_server.client().keys("celery-task-meta-*"))


def test_an_answered_query_leaves_nothing_in_redis(rig: Rig, bus: Bus) -> None:
    before = result_keys(rig)

    (reply,) = bus.ask([(QUERY, PAYLOAD)], SYSTEM_ACTOR, 10)

    assert reply is not None
    wait_for(lambda: result_keys(rig) <= before, 5, 0.05, "the query's stored reply to be deleted")


def test_a_query_nobody_waits_for_is_not_run_and_leaves_nothing_in_redis(rig: Rig, bus: Bus) -> None:
    client = rig.redis_server.client()
    observer = client.pubsub(ignore_subscribe_messages=True)
    observer.psubscribe("celery-task-meta-*")
    try:
        rig.stop_worker()
        (reply,) = bus.ask([(QUERY, PAYLOAD)], SYSTEM_ACTOR, 0.5)
        assert reply is None  # nobody answered in time: the waiter gave up
        rig.start_worker()  # it meets the query only now, past its expiry

        def revoked() -> bytes | None:
            message = observer.get_message(timeout=0.2)
            if message and json.loads(message["data"]).get("status") == "REVOKED":
                return bytes(message["channel"])
            return None

        key = wait_for(revoked, 30, 0, "the worker to discard the expired query")
        wait_for(lambda: not client.exists(key), 5, 0.05, "its REVOKED result to be deleted")
    finally:
        observer.close()
    query_id = key.decode().removeprefix("celery-task-meta-")
    assert f"Discarding revoked task: {QUERY.name}[{query_id}]" in rig.worker_log()
