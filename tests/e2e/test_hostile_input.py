"""Hostile and malformed input on the approval and admin endpoints: 4xx, never 500, nothing done."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import Api, requisition_body

RID = "00000000-0000-4000-8000-000000000000"

CASES = [
    ("POST", f"/api/v1/requisitions/{RID}/approve", "bob", {"comment": "x" * 1001}, 400),
    ("POST", f"/api/v1/requisitions/{RID}/approve", "bob", {"comment": "ok", "as_role": "admin"}, 400),
    ("POST", f"/api/v1/requisitions/{RID}/reject", "bob", {"reason": ""}, 400),
    ("POST", f"/api/v1/requisitions/{RID}/request-changes", "bob", {"comment": "x", "deadline_hours": "72"}, 400),
    ("POST", f"/api/v1/requisitions/{RID}/request-changes", "bob", {"comment": "x", "deadline_hours": 10_000}, 400),
    ("POST", f"/api/v1/requisitions/{RID}/approve", "bob", ["not", "an", "object"], 400),
    ("POST", f"/api/v1/requisitions/{RID}/approve", "bob", {"comment": "ok"}, 404),
    ("POST", "/api/v1/requisitions/not-a-uuid/approve", "bob", {"comment": "ok"}, 404),
    (
        "PUT",
        "/api/v1/caps",
        "admin",
        {"caps": [{"kind": "branch_monthly", "limit": {"minor_units": 1.5, "currency": "KES"}}]},
        400,
    ),
    (
        "PUT",
        "/api/v1/caps",
        "admin",
        {"caps": [{"kind": "weekly", "limit": {"minor_units": 1, "currency": "KES"}}]},
        400,
    ),
    (
        "PUT",
        "/api/v1/caps",
        "admin",
        {
            "caps": [
                {
                    "kind": "branch_monthly",
                    "branch_id": "'; DROP TABLE caps;--",
                    "limit": {"minor_units": 1, "currency": "KES"},
                }
            ]
        },
        422,
    ),
    ("PUT", "/api/v1/approval-policy", "admin", {"tiers": "all", "limits": {}}, 400),
    (
        "PUT",
        "/api/v1/approval-policy",
        "admin",
        {"tiers": [{"origin": "moon", "name": "T1", "up_to_major": 1, "chain": ["cfo"]}] * 2, "limits": {}},
        400,
    ),
    ("GET", "/api/v1/requisitions?limit=100000", "alice", None, 400),
    ("GET", "/api/v1/requisitions?status=%00", "alice", None, 400),
    ("GET", "/api/v1/floats/NBO%00CBD", "aud", None, 400),
    ("POST", "/api/v1/floats", "tom", {"branch": "NBO\u0000", "amount": {"minor_units": 1, "currency": "KES"}}, 400),
    ("POST", "/api/v1/requisitions", "alice", {**requisition_body(), "purpose": "fuel\u0000"}, 400),
    # A key the OpenAPI document cannot constrain: an unknown denomination, a rule (422).
    ("POST", "/api/v1/floats/NBO-CBD/cash-counts", "bob", {"currency": "KES", "denominations": {"5\u0000": 1}}, 422),
    ("GET", "/api/v1/requisitions?status=' OR 1=1 --", "alice", None, 200),
]


@pytest.mark.parametrize(("method", "path", "who", "body", "status"), CASES)
def test_hostile_input_gets_a_clear_4xx(
    api: Api, tokens: dict[str, str], method: str, path: str, who: str, body: Any, status: int
) -> None:
    response = api.request(method, path, tokens[who], json=body)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == status
    else:
        assert response.json()["items"] == []  # the injection is just a status nobody has


def test_markup_is_stored_as_text_and_served_as_json(api: Api, tokens: dict[str, str]) -> None:
    purpose = "<script>alert('x')</script> & \"quotes\""
    created = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body(purpose=purpose))
    assert created.status_code == 201
    shown = api.get(created.headers["Location"], tokens["alice"])
    assert shown.headers["Content-Type"] == "application/json"
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert shown.json()["purpose"] == purpose


def test_receipt_upload_without_a_file_is_refused(api: Api, tokens: dict[str, str]) -> None:
    created = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body())
    rid = created.json()["id"]
    response = api.post(f"/api/v1/requisitions/{rid}/receipts", tokens["alice"], data={"note": "no file"})
    assert response.status_code == 400
    missing = api.post(
        f"/api/v1/requisitions/{uuid.uuid4()}/receipts",
        tokens["alice"],
        files={"file": ("r.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert missing.status_code == 404
