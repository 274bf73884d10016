"""A worker killed with SIGKILL mid-task: the message comes back and takes effect once."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import text

from shared.config import Settings, load_settings
from shared.contracts import catalog
from shared.messaging.app import make_celery, send_command
from tests.support import scalar, start_worker, submit_envelope

KILL_REDIS_DB = 13


def test_sigkilled_worker_message_is_redelivered_and_processed_once(
    settings: Settings, test_env: dict[str, str], dbs: Any, tmp_path: Path, tokens: dict[str, str]
) -> None:
    # A broker of its own, so the session's workers cannot take the message first.
    broker = test_env["PETTYCASH_BROKER_URL"].rsplit("/", 1)[0] + f"/{KILL_REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    env = dict(test_env, PETTYCASH_BROKER_URL=broker, PETTYCASH_VISIBILITY_TIMEOUT="3")
    app = make_celery(load_settings(env), "test")
    envelope = submit_envelope(dbs)
    purpose = envelope["payload"]["purpose"]

    doomed = start_worker(
        "requisition", dict(env, PETTYCASH_FAULT_SLEEP=f"{catalog.SUBMIT_REQUISITION.name}=60"), tmp_path, "-doomed"
    )
    doomed.wait_ready("ready.")
    message_id = send_command(app, catalog.SUBMIT_REQUISITION, envelope)
    doomed.wait_ready("FAULT INJECTION")  # inside the transaction, effects flushed, not committed
    doomed.signal(signal.SIGKILL)
    doomed.process.wait()  # type: ignore[union-attr]
    assert scalar(dbs["requisition"], "SELECT count(*) FROM requisitions WHERE purpose = :p", p=purpose) == 0

    survivor = start_worker("requisition", env, tmp_path, "-survivor")
    try:
        reply = app.AsyncResult(message_id).get(timeout=30)
    finally:
        survivor.stop()

    assert reply["status"] == 201
    assert scalar(dbs["requisition"], "SELECT count(*) FROM requisitions WHERE purpose = :p", p=purpose) == 1
    requisition_id = uuid.UUID(reply["body"]["id"])
    assert scalar(dbs["requisition"], "SELECT count(*) FROM inbox WHERE message_id = :m", m=message_id) == 1
    with dbs["requisition"].engine.connect() as conn:
        events = conn.execute(text("SELECT envelope FROM outbox WHERE event_type = 'RequisitionSubmitted'")).scalars()
        mine = [e for e in events if e["payload"]["requisition_id"] == str(requisition_id)]
    assert len(mine) == 1
