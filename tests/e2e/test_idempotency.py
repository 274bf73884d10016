"""``Idempotency-Key`` over HTTP: a retried money-moving POST has one effect and gets the first answer."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gateway.idempotency import fingerprint
from services.gateway.models import IdempotencyRecord
from shared.config import Settings
from shared.db.engine import Database
from tests.payment_support import pay, reserved_requisition, treasurer, user_id
from tests.support import Api, requisition_body, scalar

PATH = "/api/v1/requisitions"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def requisitions_with(dbs: dict[str, Database], purpose: str) -> int:
    return int(scalar(dbs["requisition"], "SELECT count(*) FROM requisitions WHERE purpose = :p", p=purpose))


def test_a_replay_gets_the_first_answer_and_creates_nothing(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    body, key = requisition_body(), str(uuid.uuid4())

    first = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
    again = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))

    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert requisitions_with(dbs, body["purpose"]) == 1


def test_the_body_is_compared_as_json_not_as_bytes(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    body, key = requisition_body(), str(uuid.uuid4())
    first = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    again = api.post(PATH, tokens["alice"], data=reordered, headers={**keyed(key), "Content-Type": "application/json"})
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert requisitions_with(dbs, body["purpose"]) == 1


def test_the_same_key_for_another_request_is_refused(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    key = str(uuid.uuid4())
    first, other = requisition_body(), requisition_body()
    assert api.post(PATH, tokens["alice"], json=first, headers=keyed(key)).status_code == 201

    refused = api.post(PATH, tokens["alice"], json=other, headers=keyed(key))

    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["type"] == "idempotency-key-reused"
    assert requisitions_with(dbs, other["purpose"]) == 0


def test_keys_belong_to_their_user(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    key = str(uuid.uuid4())
    alices, sams = requisition_body(), requisition_body(branch="MSA-01")
    assert api.post(PATH, tokens["alice"], json=alices, headers=keyed(key)).status_code == 201
    assert api.post(PATH, tokens["sam"], json=sams, headers=keyed(key)).status_code == 201
    assert requisitions_with(dbs, sams["purpose"]) == 1


def _claim(dbs: Any, username: str, key: str, body: dict[str, Any], age: timedelta, bound: str | None = None) -> None:
    """A claim as a request in flight leaves it (answer not stored yet; ``bound``: its message id)."""
    with dbs["gateway"].uow() as uow:
        uow.session.add(
            IdempotencyRecord(
                user_id=uuid.UUID(user_id(dbs, username)),
                key=key,
                method="POST",
                path=PATH,
                fingerprint=fingerprint("POST", PATH, json.dumps(body).encode()),
                created_at=datetime.now(UTC) - age,
                location=f"/api/v1/commands/{bound}" if bound else None,  # the status URL binds it
            )
        )
        uow.commit()


def test_a_duplicate_while_the_first_is_in_flight_gets_409(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    body, key = requisition_body(), str(uuid.uuid4())
    _claim(dbs, "alice", key, body, timedelta(seconds=1))

    response = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))

    assert response.status_code == 409
    assert response.json()["type"] == "idempotency-request-in-flight"
    assert response.headers["Retry-After"] == "1"
    assert requisitions_with(dbs, body["purpose"]) == 0


def test_a_claim_abandoned_by_a_dead_gateway_is_taken_over(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    body, key = requisition_body(), str(uuid.uuid4())
    _claim(dbs, "alice", key, body, timedelta(minutes=5))

    response = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))

    assert response.status_code == 201, response.text
    assert api.post(PATH, tokens["alice"], json=body, headers=keyed(key)).json() == response.json()
    assert requisitions_with(dbs, body["purpose"]) == 1


def test_a_command_a_dead_gateway_bound_but_never_sent_is_sent_by_the_retry(
    api: Api, tokens: dict[str, str], dbs: Any
) -> None:
    # The gateway bound the key to a message id and died before sending it (a fault run found
    # this): a retry used to look for that message's reply and answer 202 for ever.
    body, key, bound = requisition_body(), str(uuid.uuid4()), str(uuid.uuid4())
    _claim(dbs, "alice", key, body, timedelta(minutes=5), bound=bound)

    response = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))

    assert response.status_code == 201, response.text
    assert api.post(PATH, tokens["alice"], json=body, headers=keyed(key)).json() == response.json()
    assert requisitions_with(dbs, body["purpose"]) == 1
    assert scalar(dbs["requisition"], "SELECT count(*) FROM inbox WHERE message_id = :m", m=bound) == 1


def test_concurrent_duplicates_have_one_effect(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    body, key = requisition_body(), str(uuid.uuid4())
    barrier = threading.Barrier(6)

    def send(_: int) -> Any:
        barrier.wait()
        return Api(api.base_url).post(PATH, tokens["alice"], json=body, headers=keyed(key))

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(send, range(6)))

    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert all(r.json()["type"] == "idempotency-request-in-flight" for r in responses if r.status_code == 409)
    assert requisitions_with(dbs, body["purpose"]) == 1


def test_a_malformed_request_gives_its_key_back(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    key = str(uuid.uuid4())
    broken = requisition_body()
    del broken["amount"]
    assert api.post(PATH, tokens["alice"], json=broken, headers=keyed(key)).status_code == 400

    fixed = requisition_body()
    response = api.post(PATH, tokens["alice"], json=fixed, headers=keyed(key))

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "cl\u00e9"])
def test_a_malformed_key_is_a_bad_request(api: Api, tokens: dict[str, str], key: str) -> None:
    response = api.post(
        PATH, tokens["alice"], json=requisition_body(), headers={"Idempotency-Key": key.encode("latin-1")}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "invalid-idempotency-key"


def test_no_key_no_idempotency(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    body = requisition_body()
    assert api.post(PATH, tokens["alice"], json=body).status_code == 201
    assert api.post(PATH, tokens["alice"], json=body).status_code == 201
    assert requisitions_with(dbs, body["purpose"]) == 2


def test_a_replayed_payment_is_not_executed_again(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = reserved_requisition(api, tokens, settings, dbs)["id"]
    key, code = str(uuid.uuid4()), device.code()

    first = pay(api, person, rid, code, headers=keyed(key))
    again = pay(api, person, rid, code, headers=keyed(key))
    other = pay(api, person, rid, device.code(), headers=keyed(key))

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert other.json()["type"] == "idempotency-key-reused"
    # The payment service saw one execution: the replay never reached it.
    executions = scalar(
        dbs["payment"],
        "SELECT count(*) FROM otp_attempts WHERE user_id = :u AND action = 'execute'",
        u=person.user_id,
    )
    assert executions == 1
    assert scalar(dbs["payment"], "SELECT executions FROM payments WHERE requisition_id = :r", r=rid) == 1
