"""Float management over HTTP: open, replenish (treasury asks, finance decides), read, scope."""

from __future__ import annotations

from tests.support import Api, float_of, kes, wait_for


def test_open_replenish_and_read_a_float(api: Api, tokens: dict[str, str]) -> None:
    assert (
        api.post("/api/v1/floats", tokens["alice"], json={"branch": "MLD-01", "amount": kes(1_000)}).status_code == 403
    )
    opened = api.post("/api/v1/floats", tokens["tom"], json={"branch": "MLD-01", "amount": kes(20_000)})
    assert opened.status_code == 201, opened.text
    assert opened.json()["available"] == kes(20_000)
    again = api.post("/api/v1/floats", tokens["tom"], json={"branch": "MLD-01", "amount": kes(1)})
    assert again.status_code == 409
    assert again.json()["type"] == "float-exists"
    assert api.post("/api/v1/floats", tokens["tom"], json={"branch": "NOPE", "amount": kes(1)}).status_code == 422
    assert (
        api.post(
            "/api/v1/floats", tokens["tom"], json={"branch": "MLD-01", "amount": {"minor_units": -5, "currency": "KES"}}
        ).status_code
        == 400
    )

    request = api.post(
        "/api/v1/floats/MLD-01/replenishments", tokens["tom"], json={"amount": kes(5_000), "comment": "Month end"}
    )
    assert request.status_code == 201, request.text
    decision_url = f"/api/v1/replenishments/{request.json()['id']}/decision"
    assert api.post(decision_url, tokens["tom"], json={"approve": True}).status_code == 403  # not finance
    assert api.post(decision_url, tokens["alice"], json={"approve": True}).status_code == 403
    decided = api.post(decision_url, tokens["fiona"], json={"approve": True, "comment": "ok"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert api.post(decision_url, tokens["carol"], json={"approve": False}).status_code == 409
    assert float_of(api, tokens["aud"], "MLD-01") == {"balance": 2_500_000, "held": 0, "available": 2_500_000}

    # The requests are listed (the ledger's snapshots, projected) to those whose scope covers the float.
    def listed(token: str, query: str = "") -> dict[str, str]:
        items = api.get(f"/api/v1/replenishments{query}", token).json()["items"]
        return {i["id"]: i["status"] for i in items}

    wait_for(lambda: listed(tokens["fiona"]).get(request.json()["id"]) == "approved", 10, what="the projection")
    assert listed(tokens["aud"], "?status=approved")[request.json()["id"]] == "approved"
    assert request.json()["id"] not in listed(tokens["fiona"], "?status=requested")
    assert request.json()["id"] not in listed(tokens["bob"])  # a Nairobi branch manager
    assert api.get("/api/v1/replenishments?status=nope", tokens["fiona"]).status_code == 400


def test_float_visibility_is_scoped(api: Api, tokens: dict[str, str]) -> None:
    wait_for(lambda: api.get("/api/v1/floats/MLD-01", tokens["aud"]).status_code == 200, 10)
    assert api.get("/api/v1/floats/MLD-01", tokens["sam"]).status_code == 404  # Mombasa staff
    assert api.get("/api/v1/floats/MLD-01", tokens["bob"]).status_code == 404  # Nairobi branch manager
    assert "MLD-01" not in [f["branch_code"] for f in api.get("/api/v1/floats", tokens["bob"]).json()["items"]]
    assert "MLD-01" in [f["branch_code"] for f in api.get("/api/v1/floats", tokens["fiona"]).json()["items"]]
    assert api.get("/api/v1/ledger/trial-balance", tokens["alice"]).status_code == 403
    assert api.get("/api/v1/ledger/trial-balance", tokens["aud"]).json()["balanced"] is True
