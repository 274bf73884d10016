"""The dashboard over HTTP on the running stack: a payment moves its branch's trailing spend,
history, spend by category, paid-today count and latest payments; its money agrees with the
ledger's floats; only treasury, finance and the CFO read it."""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.db.engine import Database
from tests.payment_support import pay, reserved_requisition, treasurer, wait_payment
from tests.support import Api, float_of, wait_for


def board(api: Api, token: str, branch: str = "NBO-CBD") -> dict[str, Any]:
    answer = api.get(f"/api/v1/dashboard?branch={branch}", token)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def row(body: dict[str, Any], code: str = "NBO-CBD") -> dict[str, Any]:
    return next(b for b in body["branches"] if b["branch_code"] == code)


def test_a_payment_shows_on_the_dashboard_and_its_money_agrees_with_the_ledger(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    requisition = reserved_requisition(api, tokens, settings, dbs)
    rid, amount = requisition["id"], requisition["amount"]["minor_units"]
    before = board(api, tokens["fiona"])
    assert row(before)["ready"] >= 1
    person, device = treasurer(api, dbs)
    assert pay(api, person, rid, device.code()).status_code == 201
    paid = wait_payment(api, person.token, rid, "completed")

    def moved() -> dict[str, Any] | None:
        body = board(api, tokens["fiona"])
        return body if paid["id"] in [p["id"] for p in body["latest_payments"]] else None

    after = wait_for(moved, 15, 0.5, "the dashboard to show the payment (it is at most 5 s old)")
    branch = row(after)
    assert branch["spent_in_window"]["minor_units"] == row(before)["spent_in_window"]["minor_units"] + amount
    assert branch["paid_today"] == row(before)["paid_today"] + 1
    ledger = float_of(api, tokens["aud"], "NBO-CBD")
    assert {k: branch[k]["minor_units"] for k in ("balance", "held", "available")} == ledger
    [history] = [h for h in after["balance_history"] if h["currency"] == "KES"]
    assert len(history["points"]) == after["window_days"] == 30
    assert history["points"][-1]["balance"]["minor_units"] == sum(
        b["balance"]["minor_units"] for b in after["branches"] if b["currency"] == "KES"
    )
    categories = {c["category"]: c["spent"]["minor_units"] for c in after["spend_by_category"]}
    assert categories.get(requisition["category"], 0) >= amount
    assert set(after["alerts"]) == {"info", "warning", "critical"}


def test_only_treasury_finance_and_the_cfo_read_the_dashboard(api: Api, tokens: dict[str, str]) -> None:
    for who in ("tom", "fiona", "carol"):
        assert api.get("/api/v1/dashboard", tokens[who]).status_code == 200
    for who in ("alice", "bob", "aud"):
        assert api.get("/api/v1/dashboard", tokens[who]).status_code == 403
    assert api.get("/api/v1/dashboard?branch=NOPE", tokens["fiona"]).status_code == 422
