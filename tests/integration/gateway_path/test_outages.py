"""The broker or the gateway database away: 503 with Retry-After (never 500), readiness says which, liveness stays."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import requests

from tests.integration.gateway_path.rig import CONNECTED, Rig
from tests.support import Api, requisition_body, wait_for

PATH = "/api/v1/requisitions"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "service-unavailable"
    assert int(response.headers["Retry-After"]) > 0


def ready(api: Api) -> bool:
    return api.get("/readyz").status_code == 200


def test_redis_down_answers_503_and_gives_an_unsent_commands_key_back(
    rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]
) -> None:
    api = gateway()
    assert api.post(PATH, tokens["alice"], json=requisition_body()).status_code == 201  # connections are warm
    body, key = requisition_body(), str(uuid.uuid4())
    reconnects = rig.worker_log().count(CONNECTED)

    rig.redis_server.kill()
    keyed_down = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
    plain_down = api.post(PATH, tokens["alice"], json=requisition_body())
    readiness = api.get("/readyz")
    liveness = api.get("/healthz")

    assert_unavailable(keyed_down)
    assert_unavailable(plain_down)
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["broker"].startswith("error")
    assert readiness.json()["checks"]["database"] == "ok"
    assert liveness.status_code == 200

    rig.redis_server.start()
    wait_for(lambda: rig.worker_log().count(CONNECTED) > reconnects, 60, 0.2, "the worker")
    wait_for(lambda: ready(api), 30, 0.2, "the gateway to be ready")
    # Nothing had reached the broker, so the key was given back: the retry runs the request.
    retry = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))

    assert retry.status_code == 201, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert rig.requisitions_with(body["purpose"]) == 1


def test_the_gateway_database_down_answers_503(rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]) -> None:
    api = gateway()
    assert api.post(PATH, tokens["alice"], json=requisition_body()).status_code == 201  # pooled connections exist
    body, key = requisition_body(), str(uuid.uuid4())

    rig.pg_proxy.cut()
    keyed_down = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))
    read_down = api.get(f"/api/v1/commands/{uuid.uuid4()}", tokens["alice"])
    readiness = api.get("/readyz")
    liveness = api.get("/healthz")

    assert_unavailable(keyed_down)
    assert_unavailable(read_down)
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["database"].startswith("error")
    assert readiness.json()["checks"]["broker"] == "ok"
    assert liveness.status_code == 200

    rig.pg_proxy.restore()
    wait_for(lambda: ready(api), 30, 0.2, "the gateway to be ready")
    retry = api.post(PATH, tokens["alice"], json=body, headers=keyed(key))

    assert retry.status_code == 201, retry.text
    assert rig.requisitions_with(body["purpose"]) == 1
