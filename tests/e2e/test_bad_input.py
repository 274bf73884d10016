"""Bad input at the API: a clear 4xx problem, never a 500, and nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Api, requisition_body, scalar

PROBLEM = "application/problem+json"


def _with(**changes: Any) -> str:
    return json.dumps(requisition_body(**changes))


def _without(field: str) -> str:
    body = requisition_body()
    del body[field]
    return json.dumps(body)


BAD_BODIES = {
    "malformed json": ('{"branch": "NBO-CBD", "amount": ', "invalid-request", None),
    "not an object": ("[1, 2, 3]", "invalid-request", None),
    "unknown field": (_with(approved_by="me"), "invalid-request", "approved_by"),
    "unknown nested field": (
        _with(amount={"minor_units": 100, "currency": "KES", "fx": 1}),
        "invalid-request",
        "amount",
    ),
    "negative amount": (_with(amount={"minor_units": -500, "currency": "KES"}), "invalid-request", "amount"),
    "zero amount": (_with(amount={"minor_units": 0, "currency": "KES"}), "invalid-request", "amount"),
    "fractional amount": (_with(amount={"minor_units": 12.5, "currency": "KES"}), "invalid-request", "amount"),
    "amount as string": (_with(amount={"minor_units": "1250", "currency": "KES"}), "invalid-request", "amount"),
    "amount as boolean": (_with(amount={"minor_units": True, "currency": "KES"}), "invalid-request", "amount"),
    "amount as bare number": (_with(amount=1250), "invalid-request", "amount"),
    "absurd amount": (_with(amount={"minor_units": 10**19, "currency": "KES"}), "invalid-request", "amount"),
    "unknown currency": (_with(amount={"minor_units": 100, "currency": "XYZ"}), "invalid-request", "amount"),
    "lowercase currency": (_with(amount={"minor_units": 100, "currency": "kes"}), "invalid-request", "amount"),
    "oversize purpose": (_with(purpose="x" * 501), "invalid-request", "purpose"),
    "oversize payee name": (_with(payee={"name": "p" * 121, "method": "cash"}), "invalid-request", "payee"),
    "unknown category": (_with(category="bribes"), "invalid-request", "category"),
    "unknown payee method": (_with(payee={"name": "x", "method": "crypto"}), "invalid-request", "payee"),
    "bank payee without account": (_with(payee={"name": "x", "method": "bank"}), "invalid-request", "payee"),
    "urgent without reason": (_with(urgent=True), "invalid-request", "urgency_reason"),
    "missing amount": (_without("amount"), "invalid-request", "amount"),
    "null purpose": (_with(purpose=None), "invalid-request", "purpose"),
    "script in branch code": (_with(branch="<script>alert(1)</script>" * 3), "invalid-request", "branch"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_bad_body_is_refused_with_a_problem_and_nothing_stored(
    case: str, api: Api, tokens: dict[str, str], dbs: Any
) -> None:
    raw, problem_type, field = BAD_BODIES[case]
    before = scalar(dbs["requisition"], "SELECT count(*) FROM requisitions")

    response = api.post("/api/v1/requisitions", tokens["alice"], data=raw, headers={"Content-Type": "application/json"})

    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == problem_type
    assert problem["status"] == 400
    assert problem["detail"]
    if field is not None:
        assert field in problem["errors"], problem
    assert scalar(dbs["requisition"], "SELECT count(*) FROM requisitions") == before


def test_oversize_body_is_refused(api: Api, tokens: dict[str, str]) -> None:
    response = api.post(
        "/api/v1/requisitions",
        tokens["alice"],
        data=json.dumps(requisition_body(purpose="y" * (2 * 1024 * 1024))),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == PROBLEM


def test_wrong_content_type_is_refused(api: Api, tokens: dict[str, str]) -> None:
    response = api.post("/api/v1/requisitions", tokens["alice"], data="branch=NBO-CBD")
    assert response.status_code == 400
    assert response.headers["Content-Type"] == PROBLEM


def test_unknown_id_and_bad_id_are_404(api: Api, tokens: dict[str, str]) -> None:
    assert api.get("/api/v1/requisitions/00000000-0000-0000-0000-000000000000", tokens["alice"]).status_code == 404
    bad = api.get("/api/v1/requisitions/not-a-uuid", tokens["alice"])
    assert bad.status_code == 404
    assert bad.headers["Content-Type"] == PROBLEM
