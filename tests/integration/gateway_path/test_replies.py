"""Replies reach a gateway process through one pub/sub listener: no polling, started in each
gunicorn worker after the fork, back after Redis restarts."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.integration.gateway_path.rig import SUBMIT_SLEEP_SECONDS, Rig
from tests.support import Api, requisition_body, wait_for

PATH = "/api/v1/requisitions"
WAIT = "5"  # seconds the gateway waits for a reply; far above the task's 1 s
RESULT_KEY = b"celery-task-meta-"  # the prefix of every result key (and channel)


def numpat(rig: Rig) -> int:
    """Pattern subscriptions on the rig's Redis (the worker holds some of its own: compare, don't count)."""
    return int(rig.redis_server.client().execute_command("PUBSUB", "NUMPAT"))


def timed_post(api: Api, token: str, body: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = api.post(PATH, token, json=body)
    return response, time.monotonic() - started


def test_the_listener_starts_in_the_worker_after_the_fork_and_wakes_the_request_without_polling(
    rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]
) -> None:
    workers_own = numpat(rig)
    api = gateway(PETTYCASH_COMMAND_WAIT_SECONDS=WAIT)
    assert api.get("/healthz").status_code == 200
    # The gunicorn worker subscribes once it has loaded the app, before its first request; the
    # master never does (it forks the workers: a listener thread would not survive the fork).
    wait_for(lambda: numpat(rig) == workers_own + 1, 10, 0.05, "the worker's listener to subscribe")

    first, _ = timed_post(api, tokens["alice"], requisition_body())
    assert first.status_code == 201, first.text
    assert numpat(rig) == workers_own + 1

    body = requisition_body()
    lookups = rig.redis_proxy.sent_count(RESULT_KEY)
    response, elapsed = timed_post(api, tokens["alice"], body)

    assert response.status_code == 201, response.text
    # The task sleeps 1 s before committing: the reply woke the request right after, well
    # before the 5 s wait would have ended in the safety-net lookup.
    assert SUBMIT_SLEEP_SECONDS <= elapsed < 3.0, elapsed
    # ...and the gateway named no result key to Redis meanwhile: no GET (a 2 ms poll makes ~500
    # a second), no per-key SUBSCRIBE. The reply came on the pattern subscription alone.
    assert rig.redis_proxy.sent_count(RESULT_KEY) == lookups
    assert rig.requisitions_with(body["purpose"]) == 1


def test_one_subscription_serves_every_request_thread_of_a_process(
    rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]
) -> None:
    workers_own = numpat(rig)
    api = gateway(PETTYCASH_COMMAND_WAIT_SECONDS=WAIT)
    # One branch each: submissions to one branch take its voucher sequence in turn.
    requests = [("alice", "NBO-CBD"), ("sam", "MSA-01"), ("rita", "NBO-WST")]

    with ThreadPoolExecutor(len(requests)) as pool:
        results = list(
            pool.map(lambda r: timed_post(Api(api.base_url), tokens[r[0]], requisition_body(branch=r[1])), requests)
        )

    assert [r.status_code for r, _ in results] == [201] * len(requests), [r.text for r, _ in results]
    assert all(elapsed < 3.5 for _, elapsed in results), [e for _, e in results]
    assert numpat(rig) == workers_own + 1
    # No per-thread result consumer either: Celery's would SUBSCRIBE each thread to every id it sends.
    clients = rig.redis_server.client().client_list()
    assert not [c for c in clients if int(c.get("sub", 0)) > 0], clients


def test_the_listener_comes_back_after_redis_restarts(
    rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]
) -> None:
    workers_own = numpat(rig)
    api = gateway(PETTYCASH_COMMAND_WAIT_SECONDS=WAIT)
    assert api.post(PATH, tokens["alice"], json=requisition_body()).status_code == 201

    # Down long enough that redis-py's own reconnect attempts give up and the listener's take over.
    rig.restart_redis(down_seconds=2.0)
    proc = api.proc  # type: ignore[attr-defined]
    wait_for(lambda: "reply listener: subscribed again" in proc.log(), 30, 0.1, "the listener to resubscribe")

    body = requisition_body()
    response, elapsed = timed_post(api, tokens["alice"], body)

    assert response.status_code == 201, response.text
    assert elapsed < 3.5, elapsed  # woken by the listener, not found by the lookup at the end of the wait
    assert numpat(rig) == workers_own + 1
    assert "reply listener: lost its Redis subscription" in proc.log()
    assert rig.requisitions_with(body["purpose"]) == 1
