"""The first path through real processes: POST at the gateway to an open approval case."""

from __future__ import annotations

from typing import Any

from tests.support import Api, requisition_body, scalar, wait_for

PROBLEM = "application/problem+json"


def _routed(api: Api, token: str, location: str) -> dict[str, Any] | None:
    """The requisition once both services have seen the routing (they converge by events)."""
    body: dict[str, Any] = api.get(location, token).json()
    return body if body.get("approval") and body["status"] == "pending_approval" else None


def test_submitted_requisition_reaches_the_approval_service(api: Api, tokens: dict[str, str], dbs: Any) -> None:
    body = requisition_body()
    created = api.post("/api/v1/requisitions", tokens["alice"], json=body)

    assert created.status_code == 201, created.text
    requisition = created.json()
    assert requisition["amount"] == {"minor_units": 125_000, "currency": "KES"}
    assert requisition["purpose"] == body["purpose"]
    assert requisition["requester_name"] == "alice"
    assert requisition["voucher_no"].startswith("NBO-CBD-")
    location = created.headers["Location"]
    assert location == f"/api/v1/requisitions/{requisition['id']}"

    shown = wait_for(lambda: _routed(api, tokens["alice"], location), 10, what="the approval case")
    assert shown["status"] == "pending_approval"
    assert shown["approval"]["status"] == "open"
    assert shown["approval"]["tier"] == "T1"  # KES 1,250.00 is within T1 (up to 10,000)
    assert [h["action"] for h in shown["history"]] == ["created", "submitted", "routed"]
    # The approval service's own table holds exactly one case for it.
    cases = scalar(
        dbs["approval"], "SELECT count(*) FROM approval_cases WHERE requisition_id = :id", id=requisition["id"]
    )
    assert cases == 1


def test_tier_follows_the_amount(api: Api, tokens: dict[str, str]) -> None:
    big = api.post(
        "/api/v1/requisitions",
        tokens["alice"],
        json=requisition_body(amount={"minor_units": 30_000_00, "currency": "KES"}),
    )
    assert big.status_code == 201, big.text
    shown = wait_for(lambda: _routed(api, tokens["alice"], big.headers["Location"]), 10, what="routing")
    assert shown["approval"]["tier"] == "T2"


def test_voucher_numbers_are_sequential_per_branch(api: Api, tokens: dict[str, str]) -> None:
    numbers = []
    for _ in range(3):
        r = api.post("/api/v1/requisitions", tokens["sam"], json=requisition_body(branch="MSA-01"))
        assert r.status_code == 201, r.text
        numbers.append(int(r.json()["voucher_no"].rsplit("-", 1)[1]))
    assert numbers == list(range(numbers[0], numbers[0] + 3))


def test_requests_need_a_known_bearer_token(api: Api) -> None:
    missing = api.post("/api/v1/requisitions", json=requisition_body())
    wrong = api.post("/api/v1/requisitions", "pc_not-a-real-token", json=requisition_body())
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["Content-Type"] == PROBLEM
        assert response.json()["type"] == "unauthenticated"


def test_only_members_request_for_a_branch(api: Api, tokens: dict[str, str]) -> None:
    refused = api.post("/api/v1/requisitions", tokens["sam"], json=requisition_body(branch="NBO-CBD"))
    assert refused.status_code == 403
    assert refused.json()["type"] == "not-a-branch-member"


def test_unknown_branch_is_a_broken_rule(api: Api, tokens: dict[str, str]) -> None:
    response = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body(branch="NOPE"))
    assert response.status_code == 422
    assert response.json()["type"] == "unknown-branch"


def test_other_branches_requisitions_are_invisible(api: Api, tokens: dict[str, str]) -> None:
    created = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body())
    location = created.headers["Location"]
    # Same region's manager and head-office finance see it; a Mombasa staff member does not.
    assert api.get(location, tokens["rita"]).status_code == 200
    assert api.get(location, tokens["fiona"]).status_code == 200
    hidden = api.get(location, tokens["sam"])
    assert hidden.status_code == 404
    assert hidden.headers["Content-Type"] == PROBLEM


def test_health_readiness_and_openapi(api: Api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    spec = api.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "Petty cash API"
    assert "/api/v1/requisitions" in spec["paths"]
    assert "/api/v1/requisitions/{requisition_id}" in spec["paths"]
    money = spec["components"]["schemas"]["Money"]
    assert money["properties"]["minor_units"]["type"] == "integer"
