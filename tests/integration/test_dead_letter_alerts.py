"""The dead-letter alert, end to end: raised when a worker buries a message, shown by the gateway,
cleared by the replay of the last dead letter left, and raised again if the replayed one fails again.

The ledger's worker buries the messages (no other test leaves a ledger dead letter, so "the
last one left" is this test's own); the alert is read where people read it, ``/api/v1/alerts``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.engine import Database
from shared.messaging.app import make_celery
from shared.messaging.tables import dead_letters
from tests.support import Api, Stack, pettycash, scalar, wait_for

SUBJECT = "dead_letters:ledger"


@dataclass(frozen=True)
class Rig:
    """The running stack as these tests use it: the API, finance's token, the databases, the environment."""

    api: Api
    settings: Settings
    dbs: dict[str, Database]
    fiona: str
    env: dict[str, str]


@pytest.fixture
def rig(
    api: Api,
    stack: Stack,
    settings: Settings,
    dbs: dict[str, Database],
    tokens: dict[str, str],
    test_env: dict[str, str],
) -> Rig:
    return Rig(api, settings, dbs, tokens["fiona"], test_env)


def _cancelled() -> dict[str, Any]:
    """A valid event the ledger handles (a requisition it holds nothing for was cancelled)."""
    payload = {"requisition_id": str(uuid.uuid4()), "branch_id": "b", "actor_id": "someone", "reason": "gone"}
    return Envelope(type=catalog.REQUISITION_CANCELLED.name, payload=payload, actor=SYSTEM_ACTOR).to_dict()


def _poisoned(valid: dict[str, Any]) -> dict[str, Any]:
    broken = {**valid, "actor": {k: v for k, v in valid["actor"].items() if k != "user_id"}}
    return broken  # no retry can make it whole: buried at its first delivery


def _bury(settings: Settings, dbs: dict[str, Database], message: dict[str, Any]) -> int:
    make_celery(settings, "test").send_task(catalog.handle_event_task("ledger"), args=[message], queue="ledger")
    query = "SELECT max(id) FROM dead_letters WHERE message_id = :m AND replayed_at IS NULL"
    wait_for(lambda: scalar(dbs["ledger"], query, m=message["message_id"]), 15, what="the dead letter")
    return int(scalar(dbs["ledger"], query, m=message["message_id"]))


def _repair(dbs: dict[str, Database], dead_id: int, envelope: dict[str, Any]) -> None:
    """The cause fixed (here the message itself, so the ledger can handle it once replayed)."""
    with dbs["ledger"].uow() as uow:
        uow.session.execute(dead_letters.update().where(dead_letters.c.id == dead_id).values(envelope=envelope))
        uow.commit()


def _alert(api: Api, token: str, status: str) -> dict[str, Any] | None:
    items = api.get(f"/api/v1/alerts?status={status}", token).json()["items"]
    return next((a for a in items if a["subject"] == SUBJECT), None)


def _replay(env: dict[str, str], dead_id: int) -> None:
    done = pettycash(env, "deadletters", "replay", "--service", "ledger", str(dead_id))
    assert done.returncode == 0, done.stderr


def _clears(dbs: dict[str, Database]) -> int:
    return int(
        scalar(
            dbs["ledger"],
            "SELECT count(*) FROM outbox WHERE event_type = 'AlertCleared' AND envelope->'payload'->>'subject' = :s",
            s=SUBJECT,
        )
    )


def test_the_alert_resolves_itself_when_the_last_dead_letter_is_replayed(rig: Rig) -> None:
    api, settings, dbs, fiona, test_env = rig.api, rig.settings, rig.dbs, rig.fiona, rig.env
    first, second = _cancelled(), _cancelled()
    dead = [_bury(settings, dbs, _poisoned(first)), _bury(settings, dbs, _poisoned(second))]
    wait_for(lambda: (_alert(api, fiona, "open") or {}).get("count") == 2, 15, what="the alert, folded")
    opened = _alert(api, fiona, "open")
    assert opened is not None
    assert (opened["kind"], opened["severity"]) == ("dead_letter", "critical")
    for dead_id, envelope in zip(dead, (first, second), strict=True):
        _repair(dbs, dead_id, envelope)

    clears = _clears(dbs)
    _replay(test_env, dead[0])
    # One is left: nothing clears the alert.
    assert _clears(dbs) == clears
    _replay(test_env, dead[1])
    assert _clears(dbs) == clears + 1  # in the replay's own transaction, through the outbox

    def resolved() -> dict[str, Any] | None:
        return next((a for a in _resolved(api, fiona) if a["id"] == opened["id"]), None)

    wait_for(resolved, 15, what="the alert resolved")
    alert = resolved()
    assert alert is not None
    assert alert["resolved_by"] == "system"
    assert f"#{dead[1]}" in alert["resolution_note"]
    assert _alert(api, fiona, "open") is None
    # And the replayed messages took effect.
    for envelope in (first, second):
        wait_for(
            lambda m=envelope["message_id"]: scalar(
                dbs["ledger"], "SELECT count(*) FROM inbox WHERE message_id = :m", m=m
            ),
            15,
            what="the replayed message handled",
        )


def _resolved(api: Api, token: str) -> list[dict[str, Any]]:
    items = api.get("/api/v1/alerts?status=resolved", token).json()["items"]
    return [a for a in items if a["subject"] == SUBJECT]


def test_replaying_a_message_that_fails_again_raises_the_alert_again(rig: Rig) -> None:
    api, settings, dbs, fiona, test_env = rig.api, rig.settings, rig.dbs, rig.fiona, rig.env
    valid = _cancelled()
    dead_id = _bury(settings, dbs, _poisoned(valid))
    wait_for(lambda: _alert(api, fiona, "open"), 15, what="the alert")
    opened = _alert(api, fiona, "open")
    assert opened is not None

    _replay(test_env, dead_id)  # still broken: it is buried again
    again = _wait_reburied(dbs, valid["message_id"], dead_id)
    # A dead letter is there again, so an alert is open, whichever came first to the alerts'
    # keeper: the replay's clear (the first alert resolved, the burial opening a new one) or the
    # second burial (folded into the open one, which the older clear then leaves open).

    def open_again() -> bool:
        alert = _alert(api, fiona, "open")
        if alert is None:
            return False
        if alert["id"] == opened["id"]:
            return bool(alert["count"] >= 2)
        return any(a["id"] == opened["id"] for a in _resolved(api, fiona))

    wait_for(open_again, 15, what="an open alert for the second burial")
    time.sleep(1.0)  # the other of the two events has arrived by now, and changed nothing
    assert open_again()

    _repair(dbs, again, valid)  # leave no dead letter behind
    _replay(test_env, again)
    wait_for(lambda: _alert(api, fiona, "open") is None, 15, what="the new alert resolved")


def _wait_reburied(dbs: dict[str, Database], message_id: str, before: int) -> int:
    query = "SELECT max(id) FROM dead_letters WHERE message_id = :m AND replayed_at IS NULL AND id > :b"
    wait_for(lambda: scalar(dbs["ledger"], query, m=message_id, b=before), 15, what="the second burial")
    return int(scalar(dbs["ledger"], query, m=message_id, b=before))
