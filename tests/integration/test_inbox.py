"""The inbox: a message delivered twice has one effect."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery

from shared.config import Settings
from shared.contracts import catalog
from shared.messaging.app import make_celery, send_command
from tests.support import Api, Stack, requisition_body, scalar, submit_envelope, wait_for


def _outbox_envelope(dbs: Any, event: str, requisition_id: str) -> dict[str, Any]:
    with dbs["requisition"].engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT envelope FROM outbox WHERE event_type = :t"), {"t": event}).scalars()
        return next(e for e in rows if e["payload"]["requisition_id"] == requisition_id)


def pending_requisition(api: Api, token: str) -> str:
    """A requisition created and submitted, once the approval service has taken it."""
    created = api.post("/api/v1/requisitions", token, json=requisition_body())
    wait_for(lambda: api.get(created.headers["Location"], token).json()["status"] == "pending_approval")
    return str(created.json()["id"])


def test_a_redelivered_event_opens_one_approval_case(
    api: Api, tokens: dict[str, str], dbs: Any, stack: Stack, settings: Settings
) -> None:
    requisition_id = pending_requisition(api, tokens["alice"])

    # The very message the outbox published, delivered twice more.
    envelope = _outbox_envelope(dbs, "RequisitionSubmitted", requisition_id)
    app: Celery = make_celery(settings, "test")
    for _ in range(2):
        app.send_task(catalog.handle_event_task("approval"), args=[envelope], queue="approval")
    worker_log = next(p for p in stack.procs if p.name == "worker-approval")
    wait_for(lambda: worker_log.log().count(f"duplicate approval.handle_event {envelope['message_id']}") == 2, 10)

    assert (
        scalar(dbs["approval"], "SELECT count(*) FROM approval_cases WHERE requisition_id = :r", r=requisition_id) == 1
    )
    assert scalar(dbs["approval"], "SELECT count(*) FROM inbox WHERE message_id = :m", m=envelope["message_id"]) == 1
    with dbs["approval"].engine.connect() as conn:
        from sqlalchemy import text

        opened = conn.execute(text("SELECT envelope FROM outbox WHERE event_type = 'ApprovalCaseOpened'")).scalars()
        assert [e["payload"]["requisition_id"] for e in opened].count(requisition_id) == 1
    history = scalar(
        dbs["requisition"], "SELECT count(*) FROM requisition_history WHERE requisition_id = :r", r=requisition_id
    )
    assert history == 3  # created, submitted, routed: nothing twice


def test_a_command_sent_twice_creates_one_requisition_and_answers_the_same(
    dbs: Any, stack: Stack, settings: Settings
) -> None:
    envelope = submit_envelope(dbs)
    purpose = envelope["payload"]["purpose"]
    app = make_celery(settings, "test")

    first = app.AsyncResult(send_command(app, catalog.SUBMIT_REQUISITION, envelope)).get(timeout=10)
    again = app.send_task(
        catalog.SUBMIT_REQUISITION.name, args=[envelope], queue="requisition", task_id=str(uuid.uuid4())
    )
    second = again.get(timeout=10)

    assert first["status"] == 201
    # The same answer; the snapshots for the gateway's early projection only with the first.
    assert "snapshots" in first
    assert second == {k: v for k, v in first.items() if k != "snapshots"}
    assert scalar(dbs["requisition"], "SELECT count(*) FROM requisitions WHERE purpose = :p", p=purpose) == 1
