"""When the services fall behind, the gateway says so: queue depths and lag exposed, 503 past a bound."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Api, Proc, Stack, free_port, requisition_body, wait_for


@pytest.fixture
def strict_gateway(stack: Stack, test_env: dict[str, str], tmp_path: Path) -> Iterator[Api]:
    """A second gateway on the same system that refuses work past two waiting messages a queue."""
    port = free_port()
    env = dict(test_env, PETTYCASH_GATEWAY_PORT=str(port), PETTYCASH_MAX_QUEUE_DEPTH="2")
    gateway = Proc("gateway-strict", ["gateway", "--workers", "1", "--threads", "4"], env, tmp_path / "gw.log").start()
    api = Api(f"http://127.0.0.1:{port}")
    wait_for(lambda: _up(api), 30, 0.1, "the strict gateway")
    yield api
    gateway.stop()


def _up(api: Api) -> bool:
    try:
        return api.get("/healthz").status_code == 200
    except Exception:
        return False


def test_a_gateway_refuses_new_work_while_a_queue_is_past_its_bound(
    stack: Stack, strict_gateway: Api, tokens: dict[str, str]
) -> None:
    payment = next(p for p in stack.procs if p.name == "worker-payment")
    payment.signal(signal.SIGSTOP)
    try:
        # Enrolments wait in the paused payment worker's queue (each answered 202; the worker's
        # pending BRPOP takes the first one off the list, where it cannot be counted) until the
        # gateway sees the queue past its bound and refuses.
        answers = []
        for _ in range(10):
            answers.append(strict_gateway.post("/api/v1/otp/enrolment", tokens["tom"]).status_code)
            if answers[-1] == 503:
                break
        assert answers[-1] == 503, answers
        assert set(answers[:-1]) <= {201, 202}, answers
        refused = strict_gateway.post("/api/v1/requisitions", tokens["alice"], json=requisition_body())
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["type"] == "service-overloaded"
        status = strict_gateway.get("/api/v1/system/status", tokens["aud"]).json()
        assert status["queues"]["payment"] >= 3
        assert status["queue_limit"] == 2
        assert strict_gateway.get("/api/v1/system/status", tokens["alice"]).status_code == 403
    finally:
        payment.signal(signal.SIGCONT)
    # Caught up: work is taken again, and the projection lag is reported from real samples.
    wait_for(
        lambda: (
            strict_gateway.post("/api/v1/requisitions", tokens["alice"], json=requisition_body()).status_code == 201
        ),
        30,
        0.3,
        "work accepted again",
    )
    lag = strict_gateway.get("/api/v1/system/status", tokens["aud"]).json()["projection_lag"]
    assert lag["samples"] > 0
    assert lag["p95_ms"] is not None
