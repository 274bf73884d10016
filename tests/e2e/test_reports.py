"""The reports over HTTP on the running stack: each as JSON, as CSV (parsed back and matched to
the JSON) and as PDF (opened, its title and figures read back); the trial balance against the
ledger's transfers; each reader's scope; and bad requests answered as problems."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from services.gateway.web.formatting import money
from shared.config import Settings
from shared.contracts import reports as rp
from shared.db.engine import Database
from tests.payment_support import ensure_float, reserved_requisition
from tests.support import Api, scalar

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture(scope="module")
def seeded(api_module: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]) -> dict[str, Any]:
    """Floats in Nairobi CBD and Westlands, and a requisition held on Nairobi CBD's float (Mombasa
    stays without a float: other tests rely on it)."""
    ensure_float(api_module, tokens, "NBO-WST")
    return reserved_requisition(api_module, tokens, settings, dbs)


@pytest.fixture(scope="module")
def api_module(stack: Any) -> Api:
    return Api(stack.base_url)


def get(api: Api, token: str, name: str, **params: Any) -> Any:
    return api.get(f"/api/v1/reports/{name}", token, params=params)


def as_json(api: Api, token: str, name: str, **params: Any) -> dict[str, Any]:
    answer = get(api, token, name, **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    return dict(answer.json())


def section(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return next(s["rows"] for s in body["sections"] if s["name"] == name)


def test_the_list_names_every_report_with_its_parameters(api: Api, tokens: dict[str, str]) -> None:
    answer = api.get("/api/v1/reports", tokens["aud"])
    assert answer.status_code == 200, answer.text
    listed = {r["name"]: r for r in answer.json()["items"]}
    assert set(listed) == set(rp.REPORTS)
    assert listed["trial-balance"]["parameters"] == ["at", "branch"]
    assert listed["general-ledger"]["url"] == "/api/v1/reports/general-ledger"


@pytest.mark.parametrize("name", sorted(rp.REPORTS))
def test_each_report_reads_the_same_as_json_csv_and_pdf(
    api: Api, tokens: dict[str, str], seeded: dict[str, Any], name: str
) -> None:
    body = as_json(api, tokens["fiona"], name)
    assert body["report"] == name
    assert body["title"] == rp.REPORTS[name].title
    first = body["sections"][0]
    answer = get(api, tokens["fiona"], name, format="csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert answer.headers["Content-Disposition"].startswith(f'attachment; filename="{name}-')
    parsed = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(parsed) == len(first["rows"])
    for row, line in zip(first["rows"], parsed, strict=True):
        for c in first["columns"]:
            value = row.get(c["name"])
            if c["type"] == "money" and value:
                exponent = Decimal(10) ** 2
                assert Decimal(line[c["name"]]) * exponent == value["minor_units"]
                assert line[f"{c['name']}_currency"] == value["currency"]
            elif c["type"] in ("int", "text", "branch", "date") and value is not None:
                assert line[c["name"]].lstrip("'") == str(value)
    pdf = get(api, tokens["fiona"], name, format="pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["Content-Type"] == "application/pdf"
    document = PdfReader(io.BytesIO(pdf.content))
    assert len(document.pages) >= 1
    text = " ".join(page.extract_text() for page in document.pages)
    assert body["title"] in text
    figures = [row[c["name"]] for s in body["sections"] for row in s["rows"] for c in s["columns"]]
    shown = [money(v) for v in figures if isinstance(v, dict)]
    assert not shown or any(f in text for f in shown[:20]), shown[:5]


def test_the_accept_header_chooses_the_format_when_the_query_does_not(api: Api, tokens: dict[str, str]) -> None:
    answer = api.get("/api/v1/reports/spending", tokens["carol"], headers={"Accept": "text/csv"})
    assert answer.headers["Content-Type"].startswith("text/csv")
    answer = api.get("/api/v1/reports/spending", tokens["carol"], headers={"Accept": "application/pdf"})
    assert answer.content.startswith(b"%PDF")


def test_the_trial_balance_at_today_is_the_transfers_summed(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], seeded: dict[str, Any]
) -> None:
    body = as_json(api, tokens["aud"], "trial-balance", at=TODAY)
    [kes] = [t for t in section(body, "totals") if t["currency"] == "KES"]
    assert kes["balanced"] is True
    posted = scalar(
        dbs["ledger"],
        "SELECT coalesce(sum(amount_minor), 0) FROM transfers WHERE currency = 'KES' AND NOT pending "
        "AND kind <> 'void' AND created_at < :end",
        end=datetime.now(UTC) + timedelta(days=1),
    )
    assert kes["debits"]["minor_units"] == kes["credits"]["minor_units"] == posted


def test_a_manager_reads_their_branches_and_a_requester_none(
    api: Api, tokens: dict[str, str], seeded: dict[str, Any]
) -> None:
    everything = as_json(api, tokens["fiona"], "fund-health")
    assert {"NBO-CBD", "NBO-WST"} <= {r["branch"] for r in section(everything, "floats")}
    bob = as_json(api, tokens["bob"], "fund-health")
    assert {r["branch"] for r in section(bob, "floats")} == {"NBO-CBD"}
    ledger = as_json(api, tokens["bob"], "general-ledger")
    assert section(ledger, "transfers")
    assert all("NBO-WST" not in r["debit"] + r["credit"] for r in section(ledger, "transfers"))
    bob_tb = as_json(api, tokens["bob"], "trial-balance")
    assert {r["branch"] for r in section(bob_tb, "accounts")} == {"NBO-CBD"}
    for who in ("alice", "sam", "tom"):
        refused = get(api, tokens[who], "spending")
        assert refused.status_code == 403
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert api.get("/api/v1/reports", tokens["alice"]).status_code == 403


@pytest.mark.parametrize(
    ("name", "params", "status"),
    [
        ("nothing-like-it", {}, 404),
        ("spending", {"from": "2026-02-30"}, 400),
        ("spending", {"from": "2026-05-02", "to": "2026-05-01"}, 422),
        ("spending", {"from": "2024-01-01", "to": "2026-01-01"}, 422),
        ("spending", {"format": "xlsx"}, 400),
        ("spending", {"at": TODAY}, 400),
        ("spending", {"category": "caviar"}, 400),
        ("spending", {"branch": "NOPE"}, 422),
        ("spending", {"format": "csv", "section": "nope"}, 400),
        ("general-ledger", {"after": "not-a-cursor"}, 400),
        ("general-ledger", {"limit": 5001}, 400),
        ("general-ledger", {"limit": 0}, 400),
        ("trial-balance", {"at": "yesterday"}, 400),
        ("trial-balance", {"from": TODAY}, 400),
    ],
)
def test_bad_requests_are_problems_never_errors(
    api: Api, tokens: dict[str, str], name: str, params: dict[str, Any], status: int
) -> None:
    answer = get(api, tokens["fiona"], name, **params)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["status"] == status


def test_the_general_ledger_pages_with_its_cursor(api: Api, tokens: dict[str, str], seeded: dict[str, Any]) -> None:
    first = as_json(api, tokens["aud"], "general-ledger", limit=1)
    assert len(section(first, "transfers")) == 1
    assert first["next"]
    second = as_json(api, tokens["aud"], "general-ledger", limit=1, after=first["next"])
    assert section(second, "transfers")[0]["id"] != section(first, "transfers")[0]["id"]
    page = get(api, tokens["aud"], "general-ledger", limit=1, after=first["next"], format="csv")
    [line] = list(csv.DictReader(io.StringIO(page.text)))
    assert line["id"] == section(second, "transfers")[0]["id"]
