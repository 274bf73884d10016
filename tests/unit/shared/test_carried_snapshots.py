"""Which of a command's sends wait a little (``shared.messaging.runtime.carried_snapshots``): the
snapshots its reply carries for the gateway, named by type and id, and nothing else."""

from __future__ import annotations

from shared.messaging.runtime import carried_snapshots


def test_the_snapshots_a_reply_carries_are_named_by_type_and_id() -> None:
    reply = {
        "status": 200,
        "body": {"id": "run-1"},
        "snapshots": [
            {"type": "PaymentRunChanged", "payload": {"id": "run-1", "version": 3}},
            {"type": "PaymentChanged", "payload": {"id": 42, "version": 1}},
        ],
    }
    assert carried_snapshots(reply) == {("PaymentRunChanged", "run-1"), ("PaymentChanged", "42")}


def test_a_reply_without_snapshots_holds_nothing_back() -> None:
    assert carried_snapshots({"status": 403, "body": {"type": "segregation-of-duties"}}) == set()
    assert carried_snapshots({"status": 200, "body": {}, "snapshots": None}) == set()
    assert carried_snapshots(None) == set()
    assert carried_snapshots("handled") == set()
