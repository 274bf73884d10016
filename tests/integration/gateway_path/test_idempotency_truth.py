"""``Idempotency-Key`` tells the truth: a retry never sends the command again, whatever the first attempt answered."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.integration.gateway_path.rig import Rig, transactions
from tests.support import Api, requisition_body, wait_for

PATH = "/api/v1/requisitions"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def keyed_commits(statements: list[tuple[int, str]]) -> list[list[str]]:
    """The committed transactions that wrote the idempotency record or a 202's pending command."""
    return [
        t
        for ended, t in transactions(statements)
        if ended == "COMMIT" and any("idempotency_keys" in s or "pending_commands" in s for s in t)
    ]


def test_a_retry_after_a_202_answers_the_same_command_and_never_sends_it_again(
    rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]
) -> None:
    api = gateway(PETTYCASH_COMMAND_WAIT_SECONDS="0.2")  # the task takes 1 s: a 202
    body, key = requisition_body(), str(uuid.uuid4())

    first = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
    assert first.status_code == 202, first.text
    message_id = first.json()["message_id"]
    sends = rig.redis_proxy.watch(b"LPUSH")  # any task the gateway sends from now on

    pending = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
    assert pending.status_code == 202, pending.text
    assert pending.json()["message_id"] == message_id
    assert pending.headers["Idempotent-Replayed"] == "true"

    final = wait_for(
        lambda: (r := api.post(PATH, tokens["alice"], json=body, headers=keyed(key))).status_code != 202 and r,
        20,
        0.2,
        "the first attempt's outcome",
    )
    assert final.status_code == 201, final.text
    assert final.json()["purpose"] == body["purpose"]
    assert final.headers["Location"] == f"{PATH}/{final.json()['id']}"  # as the view answers it
    assert final.headers["Idempotent-Replayed"] == "true"
    again = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
    assert (again.status_code, again.json()) == (201, final.json())  # now stored: the same answer
    assert not sends.is_set()
    assert rig.requisitions_with(body["purpose"]) == 1


def test_a_5xx_after_the_command_was_sent_does_not_free_the_key(
    rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]
) -> None:
    api = gateway(PETTYCASH_COMMAND_WAIT_SECONDS="3")
    body, key = requisition_body(), str(uuid.uuid4())
    sent = rig.redis_proxy.watch(b"LPUSH")

    with ThreadPoolExecutor(1) as pool:
        attempt = pool.submit(api.post, PATH, tokens["alice"], json=body, headers=keyed(key))
        assert sent.wait(15), "the gateway never sent the command"
        rig.redis_proxy.cut()  # the gateway loses Redis right after sending; the worker keeps it
        first = attempt.result()

    assert first.status_code == 503, first.text
    assert first.headers["Content-Type"] == "application/problem+json"
    assert int(first.headers["Retry-After"]) > 0
    wait_for(lambda: rig.requisitions_with(body["purpose"]) == 1, 20, 0.1, "the command to take effect")

    rig.redis_proxy.restore()
    sends = rig.redis_proxy.watch(b"LPUSH")
    retry = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))

    assert retry.status_code == 201, retry.text  # the first attempt's outcome, found by its message id
    assert retry.json()["purpose"] == body["purpose"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert not sends.is_set()
    assert rig.requisitions_with(body["purpose"]) == 1


def test_a_keyed_request_costs_two_commits_and_a_replay_none(
    rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]
) -> None:
    fast, slow = gateway(), gateway(PETTYCASH_COMMAND_WAIT_SECONDS="0.2")
    for api in (fast, slow):  # past the first connection, which SQLAlchemy spends on its own queries
        assert api.post(PATH, tokens["alice"], json=requisition_body()).status_code in (201, 202)
    for api, expected in ((fast, 201), (slow, 202)):
        body, key = requisition_body(), str(uuid.uuid4())
        rig.pg_proxy.take_statements()

        answered = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
        answer_statements = rig.pg_proxy.take_statements()
        replayed = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
        replay_statements = rig.pg_proxy.take_statements()

        assert answered.status_code == expected, answered.text
        # The claim (binding the message id) and the answer (with a 202's pending command): no
        # transaction of their own for either, and nothing committed by a replay of a known answer.
        written = keyed_commits(answer_statements)
        assert len(written) == 2, written
        assert written[0][0].startswith("INSERT INTO idempotency_keys"), written
        assert written[1][0].startswith("UPDATE idempotency_keys"), written
        if expected == 202:
            assert any(s.startswith("INSERT INTO pending_commands") for s in written[1]), written
        assert replayed.headers["Idempotent-Replayed"] == "true"
        if expected == 201:
            assert [e for e, _ in transactions(replay_statements) if e == "COMMIT"] == [], replay_statements
        wait_for(lambda b=body: rig.requisitions_with(b["purpose"]) == 1, 20, 0.1, "the requisition")
