"""Dead letters: a message that cannot succeed is kept, listed, and can be replayed."""

from __future__ import annotations

import json
import uuid
from typing import Any

from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.types import utcnow
from shared.messaging.app import make_celery
from shared.messaging.tables import dead_letters
from tests.support import Stack, pettycash, scalar, wait_for


def _pettycash(env: dict[str, str], *args: str) -> str:
    done = pettycash(env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _submitted(requisition_id: str) -> Envelope:
    return Envelope(
        type="RequisitionSubmitted",
        payload={
            "requisition_id": requisition_id,
            "voucher_no": "HQ-999999",
            "branch_id": "b",
            "region_id": "r",
            "origin": "head_office",
            "requester_id": "someone",
            "amount": {"minor_units": 500, "currency": "KES"},
            "category": "postage",
            "urgent": False,
        },
        actor=SYSTEM_ACTOR,
    )


def test_a_poison_message_is_dead_lettered_and_listed(
    stack: Stack, settings: Settings, dbs: Any, test_env: dict[str, str]
) -> None:
    poison = _submitted(str(uuid.uuid4())).to_dict()
    poison["payload"]["amount"] = {"minor_units": 5.5, "currency": "KES"}  # never valid, retrying cannot help
    make_celery(settings, "test").send_task(catalog.handle_event_task("approval"), args=[poison], queue="approval")

    wait_for(
        lambda: scalar(
            dbs["approval"], "SELECT count(*) FROM dead_letters WHERE message_id = :m", m=poison["message_id"]
        ),
        10,
        what="the dead letter",
    )
    listed = [
        json.loads(line) for line in _pettycash(test_env, "deadletters", "list", "--service", "approval").splitlines()
    ]
    mine = [d for d in listed if d["message_id"] == poison["message_id"]]
    assert len(mine) == 1
    assert mine[0]["task_name"] == "approval.handle_event"
    assert "minor_units" in mine[0]["error"]
    assert scalar(dbs["approval"], "SELECT count(*) FROM inbox WHERE message_id = :m", m=poison["message_id"]) == 0


def test_a_message_whose_actor_has_no_user_id_is_dead_lettered_at_once(
    stack: Stack, settings: Settings, dbs: Any
) -> None:
    poison = _submitted(str(uuid.uuid4())).to_dict()
    del poison["actor"]["user_id"]  # malformed: no retry can make it whole
    make_celery(settings, "test").send_task(catalog.handle_event_task("approval"), args=[poison], queue="approval")

    approval, mid = dbs["approval"], poison["message_id"]
    wait_for(
        lambda: scalar(approval, "SELECT count(*) FROM dead_letters WHERE message_id = :m", m=mid),
        10,
        what="the dead letter",
    )
    error = scalar(approval, "SELECT error FROM dead_letters WHERE message_id = :m", m=mid)
    assert error.startswith("permanent:")
    assert "user_id" in error
    # Refused on its first delivery, never retried.
    assert scalar(approval, "SELECT attempts FROM dead_letters WHERE message_id = :m", m=mid) == 1
    assert scalar(approval, "SELECT count(*) FROM inbox WHERE message_id = :m", m=mid) == 0


def test_a_replayed_dead_letter_takes_effect_once(stack: Stack, dbs: Any, test_env: dict[str, str]) -> None:
    # As if this delivery had exhausted its retries while the database was down.
    requisition_id = str(uuid.uuid4())
    envelope = _submitted(requisition_id).to_dict()
    with dbs["approval"].uow() as uow:
        dead_id = uow.session.execute(
            dead_letters.insert()
            .values(
                message_id=uuid.UUID(envelope["message_id"]),
                task_name="approval.handle_event",
                envelope=envelope,
                error="OperationalError: connection refused",
                attempts=6,
                failed_at=utcnow(),
            )
            .returning(dead_letters.c.id)
        ).scalar_one()
        uow.commit()

    out = _pettycash(test_env, "deadletters", "replay", "--service", "approval", str(dead_id))
    assert f"replayed {dead_id}" in out
    wait_for(
        lambda: scalar(
            dbs["approval"], "SELECT count(*) FROM approval_cases WHERE requisition_id = :r", r=requisition_id
        ),
        10,
        what="the replayed event's effect",
    )
    # A second replay of the same dead letter is refused: it was replayed already.
    again = pettycash(test_env, "deadletters", "replay", "--service", "approval", str(dead_id))
    assert again.returncode != 0
    assert "no unreplayed dead letter" in again.stderr
    assert (
        scalar(dbs["approval"], "SELECT count(*) FROM approval_cases WHERE requisition_id = :r", r=requisition_id) == 1
    )
