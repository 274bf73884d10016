"""Bundles of events (``<service>.handle_events``) on the running stack: a bundle that cannot be
taken whole goes one event at a time, each on the path it would have taken alone."""

from __future__ import annotations

import uuid
from typing import Any

from shared.config import Settings
from shared.contracts import catalog
from shared.messaging.app import make_celery
from tests.integration.test_dead_letters import _submitted
from tests.integration.test_inbox import _outbox_envelope, pending_requisition
from tests.support import Api, Stack, scalar, wait_for


def test_a_bundle_holding_a_poison_event_goes_one_by_one(
    api: Api, tokens: dict[str, str], dbs: Any, stack: Stack, settings: Settings
) -> None:
    requisition_id = pending_requisition(api, tokens["alice"])
    handled = _outbox_envelope(dbs, "RequisitionSubmitted", requisition_id)  # taken already, alone
    poison = _submitted(str(uuid.uuid4())).to_dict()
    poison["payload"]["amount"] = {"minor_units": 5.5, "currency": "KES"}  # never valid

    bundle = catalog.handle_events_task("approval")
    make_celery(settings, "test").send_task(bundle, args=[[handled, poison]], queue="approval")

    worker = next(p for p in stack.procs if p.name == "worker-approval")
    wait_for(lambda: "a bundle of 2 event(s) for approval goes one by one" in worker.log(), 10, what="the fallback")
    wait_for(lambda: f"duplicate approval.handle_event {handled['message_id']}" in worker.log(), 10)
    dead = "SELECT task_name FROM dead_letters WHERE message_id = :m"
    wait_for(lambda: scalar(dbs["approval"], dead, m=poison["message_id"]) == "approval.handle_event", 10)
    cases = "SELECT count(*) FROM approval_cases WHERE requisition_id = :r"
    assert scalar(dbs["approval"], cases, r=requisition_id) == 1
    assert scalar(dbs["approval"], "SELECT count(*) FROM inbox WHERE message_id = :m", m=poison["message_id"]) == 0


def test_a_bundle_of_events_taken_already_changes_nothing(
    api: Api, tokens: dict[str, str], dbs: Any, stack: Stack, settings: Settings
) -> None:
    # Two requisitions submitted; the approval service took their events one at a time. The
    # same two events, sent again as one bundle, are duplicates: acknowledged, nothing opened twice.
    ids = [pending_requisition(api, tokens["alice"]) for _ in range(2)]
    events = [_outbox_envelope(dbs, "RequisitionSubmitted", rid) for rid in ids]
    make_celery(settings, "test").send_task(catalog.handle_events_task("approval"), args=[events], queue="approval")

    worker = next(p for p in stack.procs if p.name == "worker-approval")
    wait_for(lambda: "2 duplicate event(s) of a bundle ignored by approval" in worker.log(), 10, what="the bundle")
    for rid in ids:
        assert scalar(dbs["approval"], "SELECT count(*) FROM approval_cases WHERE requisition_id = :r", r=rid) == 1
