"""The answers' contract: what the API returns is what its OpenAPI document says, and nothing less
than what the services say.

The fuzzer (``test_api_fuzzing``) runs on a nearly empty system, so most of its answers are
problems and empty lists. Here a whole journey (a float, requisitions through every decision,
a receipt, an authenticator, a payment, a replenishment, the policy and the caps) is driven as
its users would, and every answer is checked by schemathesis's conformance checks: status,
content type, headers and body as documented. Then every body the services published to the
gateway's projections is dumped with its response schema and must come out unchanged: a field
a schema forgot would be dropped by flask-smorest, silently, and this says which.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
import schemathesis
from marshmallow import Schema
from sqlalchemy import select

from services.gateway import payment_runs, run_schemas, schemas
from services.gateway.passwords import Passwords
from services.gateway.readmodels import (
    rm_accounts,
    rm_alerts,
    rm_approval_cases,
    rm_documents,
    rm_payment_runs,
    rm_payments,
    rm_requisitions,
)
from shared.config import load_settings
from shared.db.engine import Database
from tests.payment_support import Authenticator, Person, bank, enrol, ensure_float, new_person, wait_payment
from tests.support import Api, Stack, kes, requisition_body, wait_for

CONFORMANCE = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Contract:
    """Calls the API and checks each answer against the operation the OpenAPI document declares."""

    def __init__(self, api: Api) -> None:
        from schemathesis.checks import CHECKS, load_all_checks

        self.api = api
        self.document = schemathesis.openapi.from_dict(api.get("/api/v1/openapi.json").json())
        load_all_checks()
        self.checks = CHECKS.get_by_names(list(CONFORMANCE))
        self.answered: set[tuple[str, str, int]] = set()

    def __call__(
        self, method: str, template: str, token: str | None, expect: int | set[int], /, **kwargs: Any
    ) -> requests.Response:
        params = kwargs.pop("params", None)
        path_parameters = {k[1:]: v for k, v in list(kwargs.items()) if k.startswith("_")}
        for key in path_parameters:
            kwargs.pop(f"_{key}")
        path = template.format(**path_parameters)
        response = self.api.request(method, path, token, params=params, **kwargs)
        expected = expect if isinstance(expect, set) else {expect}
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        operation = self.document[template][method.upper()]
        case = operation.Case(path_parameters=path_parameters or None, query=params)
        case.validate_response(response, checks=self.checks)  # raises, naming what does not conform
        self.answered.add((method.upper(), template, response.status_code))
        return response


@pytest.fixture(scope="module")
def contract(stack: Stack) -> Contract:
    return Contract(Api(stack.base_url))


def _json(value: Any) -> Any:
    """As it travels: through JSON and back."""
    return json.loads(json.dumps(value))


def _lossless(schema: Schema, body: dict[str, Any], what: str) -> None:
    assert _json(schema.dump(body)) == _json(body), f"{what}: the response schema changes {body}"


def _status(api: Api, token: str, rid: str) -> str:
    return str(api.get(f"/api/v1/requisitions/{rid}", token).json()["status"])


def _wait(api: Api, token: str, rid: str, *statuses: str) -> None:
    wait_for(lambda: _status(api, token, rid) in statuses, 20, 0.05, f"{rid} to become one of {statuses}")


@pytest.fixture(scope="module")
def journey(contract: Contract, tokens: dict[str, str], dbs: dict[str, Database], tmp_var: Path) -> Contract:
    """The journey, once per module: each of its answers checked as it comes."""
    call, api = contract, contract.api
    alice, bob, rita, fiona, admin, aud = (tokens[u] for u in ("alice", "bob", "rita", "fiona", "admin", "aud"))
    requisition = "/api/v1/requisitions/{requisition_id}"

    # Floats: opened (or open already), listed, one branch's.
    ensure_float(api, tokens)
    call("GET", "/api/v1/floats", tokens["tom"], 200)
    call("GET", "/api/v1/floats/{branch_code}", aud, 200, _branch_code="NBO-CBD")
    call("POST", "/api/v1/floats", tokens["tom"], 409, json={"branch": "NBO-CBD", "amount": kes(1)})
    call("POST", "/api/v1/floats", tokens["tom"], {201, 409}, json={"branch": "HQ", "amount": kes(1_000)})

    # A requisition submitted (201, Location), routed, listed, shown, approved: T1, bob.
    created = call("POST", "/api/v1/requisitions", alice, 201, json=requisition_body(payee=bank("ACC-1")))
    rid = created.json()["id"]
    assert created.headers["Location"].endswith(rid)
    _wait(api, alice, rid, "pending_approval")
    inbox = call("GET", "/api/v1/approvals/inbox", bob, 200).json()
    assert rid in [item["requisition_id"] for item in inbox["items"]]
    call("POST", requisition + "/approve", bob, 200, _requisition_id=rid, json={"comment": "ok"})
    _wait(api, alice, rid, "reserved", "awaiting_funds")
    shown = call("GET", requisition, alice, 200, _requisition_id=rid).json()
    assert shown["approval"]["steps"]
    assert shown["history"]
    call("GET", "/api/v1/requisitions", alice, 200, params={"scope": "mine", "limit": 5})
    call("GET", "/api/v1/requisitions", admin, 200, params={"scope": "all", "status": "reserved"})

    # A draft with a receipt, edited, submitted; sent back for changes, edited, resubmitted.
    draft = call("POST", "/api/v1/requisitions", alice, 201, json=requisition_body(draft=True)).json()
    assert draft["status"] == "draft"
    assert draft["voucher_no"] is None
    receipt = PNG + uuid.uuid4().bytes
    attached = call(
        "POST",
        requisition + "/receipts",
        alice,
        201,
        _requisition_id=draft["id"],
        files={"file": ("r.png", receipt, "image/png")},
    )
    assert attached.json()["content_type"] == "image/png"
    edit = requisition_body(amount=kes(900), purpose="Printer toner")
    del edit["branch"]
    call("PATCH", requisition, alice, 200, _requisition_id=draft["id"], json=edit)
    call("POST", requisition + "/submit", alice, 200, _requisition_id=draft["id"])
    _wait(api, alice, draft["id"], "pending_approval")
    call("POST", requisition + "/request-changes", bob, 200, _requisition_id=draft["id"], json={"comment": "Split it"})
    _wait(api, alice, draft["id"], "changes_requested")
    call("GET", requisition, alice, 200, _requisition_id=draft["id"])
    call("PATCH", requisition, alice, 200, _requisition_id=draft["id"], json=edit)
    call("POST", requisition + "/submit", alice, 200, _requisition_id=draft["id"])
    _wait(api, alice, draft["id"], "pending_approval")
    call("POST", requisition + "/reject", bob, 200, _requisition_id=draft["id"], json={"reason": "Not this month"})

    # Urgent requests: one confirmed by the tier's final approver, one reverted, one cancelled.
    urgent = {"amount": kes(30_000), "urgent": True, "urgency_reason": "Generator failed"}
    confirmed = call("POST", "/api/v1/requisitions", alice, 201, json=requisition_body(**urgent)).json()["id"]
    reverted = call("POST", "/api/v1/requisitions", alice, 201, json=requisition_body(**urgent)).json()["id"]
    _wait(api, alice, confirmed, "pending_urgency_confirmation")
    call("POST", requisition + "/confirm-urgency", rita, 200, _requisition_id=confirmed, json={"comment": "Confirmed"})
    _wait(api, alice, reverted, "pending_urgency_confirmation")
    call("POST", requisition + "/revert-urgency", rita, 200, _requisition_id=reverted, json={"comment": "Can wait"})
    _wait(api, alice, reverted, "pending_approval")
    call("POST", requisition + "/cancel", alice, 200, _requisition_id=reverted, json={"comment": "No longer needed"})
    call("GET", requisition, alice, 200, _requisition_id=confirmed)

    # Treasury: an authenticator enrolled (the secret shown once) and activated, then a payment.
    person = new_person(dbs)
    enrolled = call("POST", "/api/v1/otp/enrolment", person.token, 201).json()
    assert enrolled["provisioning_uri"].startswith("otpauth://")
    assert enrolled["qr_svg"]
    device = Authenticator(pyotp.parse_uri(enrolled["provisioning_uri"]).secret)
    activated = call("POST", "/api/v1/otp/activation", person.token, 200, json={"code": device.code()})
    _pay(call, api, person, device, rid, alice)
    _run(call, api, dbs, tokens)
    _identity_journey(call, tokens, dbs, tmp_var, person, activated.json()["recovery_codes"])

    # A replenishment asked for and decided.
    asked = call(
        "POST",
        "/api/v1/floats/{branch_code}/replenishments",
        tokens["tom"],
        201,
        _branch_code="NBO-CBD",
        json={"amount": kes(1_000), "comment": "Month end"},
    ).json()
    decided = call(
        "POST",
        "/api/v1/replenishments/{request_id}/decision",
        fiona,
        200,
        _request_id=asked["id"],
        json={"approve": True},
    )
    assert decided.json()["status"] == "approved"
    # A cash count far from the books (the float holds far more): the CFO's to decide; rejected.
    counted = call(
        "POST",
        "/api/v1/floats/{branch_code}/cash-counts",
        tokens["bob"],
        201,
        _branch_code="NBO-CBD",
        json={"currency": "KES", "denominations": {"1000": 3, "0.50": 2}, "comment": "spot check"},
    ).json()
    assert (counted["status"], counted["counted"]["minor_units"], counted["needs_cfo"]) == ("pending", 300_100, True)
    path = "/api/v1/cash-counts/{count_id}/decision"
    rejected = call("POST", path, tokens["carol"], 200, _count_id=counted["id"], json={"approve": False}).json()
    assert rejected["status"] == "rejected"
    assert counted["id"] in [c["id"] for c in call("GET", "/api/v1/cash-counts", fiona, 200).json()["items"]]
    listed = call("GET", "/api/v1/replenishments", fiona, 200).json()["items"]
    assert asked["id"] in [r["id"] for r in listed]  # the decision's reply projected it already

    # The books, the policy (put back as it is: a new version), the caps, alerts, operations.
    call("GET", "/api/v1/ledger/trial-balance", aud, 200)
    policy = call("GET", "/api/v1/approval-policy", admin, 200).json()
    again = call("PUT", "/api/v1/approval-policy", admin, 201, json={k: v for k, v in policy.items() if k != "version"})
    assert again.json()["version"] > policy["version"]
    _put_caps_and_back(call, api, admin, dbs)
    _handle_an_alert(call, api, admin, person)
    dashboard = call("GET", "/api/v1/dashboard", fiona, 200).json()
    assert dashboard["window_days"] == 30
    call("GET", "/api/v1/alerts", bob, 200)
    call("GET", "/api/v1/system/status", admin, 200)
    listed_reports = call("GET", "/api/v1/reports", fiona, 200).json()
    for report in listed_reports["items"]:
        call("GET", "/api/v1/reports/{name}", fiona, 200, _name=report["name"])

    # One left waiting for bob, so the projections hold an inbox item for the next test.
    waiting = call("POST", "/api/v1/requisitions", alice, 201, json=requisition_body(amount=kes(700))).json()["id"]
    _wait(api, alice, waiting, "pending_approval")

    # Problems, as documented.
    call("GET", requisition, alice, 404, _requisition_id=str(uuid.uuid4()))
    call("GET", requisition, None, 401, _requisition_id=rid)
    call("GET", "/api/v1/ledger/trial-balance", alice, 403)
    call("GET", "/api/v1/requisitions", alice, 422, params={"branch": "NOPE"})
    call("POST", "/api/v1/requisitions", alice, 400, data="{", headers={"Content-Type": "application/json"})
    call("POST", "/api/v1/requisitions", alice, 400, json=requisition_body(payee={"name": "x", "method": "bank"}))
    call("POST", requisition + "/approve", bob, 409, _requisition_id=rid, json={"comment": "again"})
    call("GET", "/api/v1/commands/{message_id}", alice, 404, _message_id=str(uuid.uuid4()))
    not_allowed = api.request("DELETE", "/api/v1/requisitions", alice)
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    return contract


def _strong() -> str:
    return "-".join(secrets.token_urlsafe(5) for _ in range(4))


def _give_password(dbs: dict[str, Database], user_id: str) -> str:
    password = _strong()
    hashed = Passwords.from_settings(load_settings().identity).hash(password)
    with dbs["gateway"].engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET password_hash = %s WHERE id = %s", (hashed, user_id))
    return password


def _link_token(mail_dir: Path, to: str) -> str:
    """The token of the newest password link mailed to ``to`` (mail lands in var/mail/)."""
    for path in sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns, reverse=True):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if mail["To"] == to:
            found = re.search(r"/password/set\?token=([A-Za-z0-9_-]+)", mail.get_body().get_content())
            assert found, mail
            return found.group(1)
    raise AssertionError(f"no mail to {to} in {mail_dir}")


def _identity_journey(
    call: Contract, tokens: dict[str, str], dbs: dict[str, Database], var: Path, person: Person, recovery: list[str]
) -> None:
    """Administration, sign-in on a session, one's own account and tokens, password links."""
    admin, aud = tokens["admin"], tokens["aud"]
    browser = Contract.__new__(Contract)  # the same document and checks, its own cookie jar
    browser.__dict__.update(call.__dict__, api=Api(call.api.base_url))

    # The organisation: a region, a branch in it with its float's levels, the roles.
    region = f"J{uuid.uuid4().hex[:6].upper()}"
    call("GET", "/api/v1/admin/regions", aud, 200)
    call("POST", "/api/v1/admin/regions", admin, 201, json={"code": region, "name": "Journey region"})
    call("PATCH", "/api/v1/admin/regions/{region_code}", admin, 200, _region_code=region, json={"name": "Renamed"})
    branch = f"{region}-1"
    levels = {"reorder_level": kes(10_000), "imprest": kes(40_000)}
    call("POST", "/api/v1/admin/branches", admin, 201, json={"code": branch, "name": "Journey", "region": region})
    call("PATCH", "/api/v1/admin/branches/{branch_code}", admin, 200, _branch_code=branch, json=levels)
    call("GET", "/api/v1/admin/branches", aud, 200)
    call("GET", "/api/v1/admin/roles", aud, 200)

    # A user invited (a link by mail), who sets a password with it and signs in.
    username = f"journey-{uuid.uuid4().hex[:6]}"
    email = f"{username}@example.org"
    invited = call(
        "POST",
        "/api/v1/admin/users",
        admin,
        201,
        json={"username": username, "full_name": "Jo Urney", "email": email, "roles": ["staff"], "branches": [branch]},
    ).json()
    user = "/api/v1/admin/users/{user_id}"
    call("GET", "/api/v1/admin/users", aud, 200, params={"q": "journey"})
    call("GET", user, aud, 200, _user_id=invited["id"])
    call("PATCH", user, admin, 200, _user_id=invited["id"], json={"branches": [branch, "NBO-CBD"]})
    password = _strong()
    link = _link_token(var / "mail", email)
    call("POST", "/api/v1/password-link", None, 200, json={"token": link, "password": password})
    csrf = browser("GET", "/api/v1/session", None, 200).json()["csrf_token"]
    signed = browser(
        "POST",
        "/api/v1/session",
        None,
        200,
        json={"username": email, "password": password},
        headers={"X-CSRFToken": csrf},
    )
    csrf = {"X-CSRFToken": signed.json()["csrf_token"]}
    browser("GET", "/api/v1/account", None, 200)
    made = browser(
        "POST", "/api/v1/account/tokens", None, 201, json={"name": "script", "read_only": True}, headers=csrf
    )
    browser("GET", "/api/v1/account/tokens", None, 200)
    browser("DELETE", "/api/v1/account/tokens/{token_id}", None, 204, _token_id=made.json()["id"], headers=csrf)
    second = browser(
        "POST", "/api/v1/account/tokens", None, 201, json={"name": "cron", "expires_in_days": 30}, headers=csrf
    )
    call("GET", user + "/tokens", admin, 200, _user_id=invited["id"])
    call("DELETE", user + "/tokens/{token_id}", admin, 204, _user_id=invited["id"], _token_id=second.json()["id"])
    changed = {"current_password": password, "new_password": _strong()}
    browser("POST", "/api/v1/account/password", None, 200, json=changed, headers=csrf)  # ends the session
    call("POST", "/api/v1/password-reset", None, 202, json={"username": username})
    call("POST", user + "/password-link", admin, 201, _user_id=invited["id"])
    call("POST", user + "/deactivate", admin, 200, _user_id=invited["id"])
    call("POST", user + "/reactivate", admin, 200, _user_id=invited["id"])
    call("POST", user + "/unlock", admin, 200, _user_id=invited["id"])

    # Treasury signs in with the second factor (a recovery code), renews the codes, resets it.
    treasurer = Contract.__new__(Contract)
    treasurer.__dict__.update(call.__dict__, api=Api(call.api.base_url))
    secret = _give_password(dbs, person.user_id)
    csrf = treasurer("GET", "/api/v1/session", None, 200).json()["csrf_token"]
    login = {"username": person.username, "password": secret}
    half = treasurer("POST", "/api/v1/session", None, 200, json=login, headers={"X-CSRFToken": csrf}).json()
    assert half["next"] == "second-factor"
    csrf = half["csrf_token"]
    done = treasurer(
        "POST",
        "/api/v1/session/second-factor",
        None,
        200,
        json={"recovery_code": recovery[0]},
        headers={"X-CSRFToken": csrf},
    ).json()
    csrf = {"X-CSRFToken": done["csrf_token"]}
    step_up = {"password": secret, "recovery_code": recovery[1]}
    renewed = treasurer("POST", "/api/v1/account/recovery-codes", None, 201, json=step_up, headers=csrf).json()
    step_up = {"password": secret, "recovery_code": renewed["codes"][0]}
    treasurer("POST", "/api/v1/account/second-factor/reset", None, {200, 202}, json=step_up, headers=csrf)
    treasurer("DELETE", "/api/v1/session", None, 200, headers=csrf)
    call("DELETE", "/api/v1/sessions", person.token, 200)
    other = new_person(dbs)
    enrol(call.api, other)
    call("POST", user + "/second-factor/reset", admin, {200, 202}, _user_id=other.user_id)
    call("GET", "/api/v1/security-events", aud, 200, params={"type": "sign-in-succeeded"})
    call.answered |= browser.answered | treasurer.answered


def test_every_answer_of_a_whole_journey_conforms(journey: Contract) -> None:
    """Each operation of the document answered a success, as documented, at least once (the
    status of a slow command, a 202 first, is left to the gateway-path tests)."""
    succeeded = {(method, path) for method, path, status in journey.answered if status < 300}
    documented = {
        (method.upper(), path)
        for path, operations in journey.document.raw_schema["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert documented - succeeded == {("GET", "/api/v1/commands/{message_id}")}


def _pay(call: Contract, api: Api, person: Person, device: Authenticator, rid: str, alice: str) -> None:
    _wait(api, alice, rid, "reserved")
    path = "/api/v1/requisitions/{requisition_id}/payment"
    for _ in range(3):  # wrong codes: answered, counted, and the third raises an alert (handled below)
        call("POST", path, person.token, 422, _requisition_id=rid, json={"otp": device.wrong_code()})
    executed = call("POST", path, person.token, 201, _requisition_id=rid, json={"otp": device.code()})
    assert executed.json()["state"] == "processing"
    assert executed.headers["Location"].endswith(f"/{rid}/payment")
    wait_payment(api, person.token, rid, "completed")
    paid = call("GET", path, person.token, 200, _requisition_id=rid).json()
    assert paid["history"][0]["attempts"]
    _wait(api, alice, rid, "paid")


def _reserved(call: Contract, api: Api, tokens: dict[str, str], major: int) -> str:
    alice = tokens["alice"]
    rid = call("POST", "/api/v1/requisitions", alice, 201, json=requisition_body(amount=kes(major))).json()["id"]
    _wait(api, alice, rid, "pending_approval")
    path = "/api/v1/requisitions/{requisition_id}/approve"
    call("POST", path, tokens["bob"], 200, _requisition_id=rid, json={"comment": "ok"})
    _wait(api, alice, rid, "reserved")
    return str(rid)


def _run(call: Contract, api: Api, dbs: dict[str, Database], tokens: dict[str, str]) -> None:
    """Payment runs: the ready list; one run paid on one code; two above the maker-checker
    total, one authorised by a second officer and one cancelled; the refusals. Two treasurers
    of their own (each code spends a time step, and codes are rate-limited per person); a
    refusal decided before the code is checked is sent any code."""
    person = new_person(dbs)
    device = enrol(api, person)
    rid = _reserved(call, api, tokens, 640)
    ready = call("GET", "/api/v1/payment-runs/candidates", person.token, 200, params={"method": "cash"}).json()
    assert rid in [r["id"] for r in ready["items"]]
    runs, run = "/api/v1/payment-runs", "/api/v1/payment-runs/{run_id}"
    unchecked = {"otp": "000000"}
    made = call("POST", runs, person.token, 201, json={"requisition_ids": [rid], "otp": device.code()}).json()
    assert made["state"] == "started"
    wait_for(lambda: api.get(f"{runs}/{made['id']}", person.token).json()["finished"], 20)
    assert call("GET", run, tokens["aud"], 200, _run_id=made["id"]).json()["progress"]["paid"] == 1
    call("POST", run + "/authorisation", person.token, 409, _run_id=made["id"], json=unchecked)
    call("POST", run + "/cancellation", person.token, 409, _run_id=made["id"], json={})
    call("POST", runs, person.token, 422, json={"requisition_ids": [rid], **unchecked})

    checker = new_person(dbs)
    checker_device = enrol(api, checker)
    # KES 5,200.00 each: above 5,000.00. One made by the person, the other by the checker.
    for maker, maker_device, other in ((person, device, checker), (checker, checker_device, person)):
        pair = [_reserved(call, api, tokens, 2_600) for _ in range(2)]
        big = call("POST", runs, maker.token, 201, json={"requisition_ids": pair, "otp": maker_device.code()}).json()
        assert big["state"] == "awaiting_second"
        if maker is person:
            call("POST", run + "/authorisation", person.token, 403, _run_id=big["id"], json=unchecked)
            theirs = {"otp": checker_device.code()}
            started = call("POST", run + "/authorisation", other.token, 200, _run_id=big["id"], json=theirs).json()
            assert started["state"] == "started"
        else:
            why = {"reason": "Not this week"}
            assert call("POST", run + "/cancellation", other.token, 200, _run_id=big["id"], json=why).json()
    call("GET", runs, tokens["fiona"], 200)
    _wait(api, tokens["alice"], rid, "paid")


def _handle_an_alert(call: Contract, api: Api, admin: str, person: Person) -> None:
    """The wrong codes' alert (otp_failures): listed, acknowledged, resolved with a note."""
    subject = f"user:{person.user_id}"

    def raised() -> dict[str, Any] | None:
        items = api.get("/api/v1/alerts", admin).json()["items"]
        return next((a for a in items if a["subject"] == subject), None)

    alert = wait_for(raised, 20, 0.2, "the otp_failures alert")
    listed = call("GET", "/api/v1/alerts", admin, 200).json()
    assert listed["counts"]["warning"] >= 1
    path = "/api/v1/alerts/{alert_id}"
    acked = call("POST", f"{path}/acknowledgement", admin, 200, _alert_id=alert["id"]).json()
    assert acked["status"] == "acknowledged"
    done = call("POST", f"{path}/resolution", admin, 200, _alert_id=alert["id"], json={"note": "Typing errors"})
    assert (done.json()["status"], done.json()["resolution_note"]) == ("resolved", "Typing errors")


def _put_caps_and_back(call: Contract, api: Api, admin: str, dbs: dict[str, Database]) -> None:
    before = call("GET", "/api/v1/caps", admin, 200).json()["caps"]
    caps = [
        {"kind": "category_per_requisition", "category": "travel", "limit": kes(9_999_999)},
        {"kind": "branch_monthly", "branch_id": "MLD-01", "limit": kes(9_999_999)},
    ]
    put = call("PUT", "/api/v1/caps", admin, 200, json={"caps": caps}).json()
    assert [c["kind"] for c in put["caps"]] == ["category_per_requisition", "branch_monthly"]
    codes = _branch_codes(dbs)
    restored = [{**c, "branch_id": codes[c["branch_id"]]} if c["branch_id"] else c for c in before]
    call("PUT", "/api/v1/caps", admin, 200, json={"caps": restored})


def _branch_codes(dbs: dict[str, Database]) -> dict[str, str]:
    from sqlalchemy import text

    with dbs["gateway"].engine.connect() as conn:
        return {str(i): str(c) for i, c in conn.execute(text("SELECT id, code FROM branches"))}


def test_the_response_schemas_drop_nothing_the_services_publish(journey: Contract, dbs: dict[str, Database]) -> None:
    """Every body in the gateway's projections (what the GETs answer with), dumped with its
    response schema, comes out as it went in."""
    checked: dict[str, int] = {}

    def each(table: Any, column: str, schema: Schema, what: str, where: Callable[[Any], Any] | None = None) -> None:
        query = select(table.c[column])
        if where is not None:
            query = query.where(where(table))
        with dbs["gateway"].engine.connect() as conn:
            for body in conn.execute(query).scalars():
                if body is not None:
                    _lossless(schema, body, what)
                    checked[what] = checked.get(what, 0) + 1

    each(rm_requisitions, "body", schemas.RequisitionSchema(), "requisition")
    each(rm_approval_cases, "body", schemas.ApprovalCaseSchema(), "approval case")
    each(rm_approval_cases, "item", schemas.InboxItemSchema(), "inbox item")
    each(rm_accounts, "body", schemas.AccountSchema(), "account")
    each(rm_accounts, "float", schemas.FloatSchema(), "float")
    each(rm_payments, "body", schemas.PaymentSchema(), "payment")
    each(rm_alerts, "body", schemas.AlertSchema(), "alert")
    each(rm_documents, "body", schemas.PolicyVersionSchema(), "policy", lambda t: t.c.id == "policy")
    each(rm_documents, "body", schemas.CapListSchema(), "caps", lambda t: t.c.id == "caps")
    with dbs["gateway"].engine.connect() as conn:
        for body in conn.execute(select(rm_payment_runs.c.body)).scalars():
            _lossless(run_schemas.RunSchema(), payment_runs.with_progress(body, {}), "payment run")
            checked["payment run"] = checked.get("payment run", 0) + 1
    kinds = ("requisition", "approval case", "inbox item", "account", "float", "payment", "policy", "caps")
    for what in (*kinds, "payment run"):
        assert checked.get(what), f"no {what} was projected to check"


def test_the_bodies_no_projection_keeps_are_dumped_whole() -> None:
    """Replies that are not projected (a replenishment, an enrolment with its secret shown
    once, a command's status), and an alert (the journey may raise none), built by the
    services' own presenters."""
    from datetime import UTC, datetime

    from services.ledger.models import Replenishment
    from services.ledger.schemas import replenishment_body
    from services.payment.models import OtpEnrolment
    from services.payment.schemas import enrolment_body, enrolment_secret_body
    from services.requisition.models import Alert
    from services.requisition.schemas import alert_body

    now = datetime.now(UTC)
    replenishment = Replenishment(
        id=uuid.uuid4(),
        branch_id=str(uuid.uuid4()),
        amount_minor=100_000,
        currency="KES",
        status="requested",
        requested_by=str(uuid.uuid4()),
        requested_at=now,
        comment="",
        decided_by=None,
        decided_at=None,
        decision_comment="",
    )
    _lossless(schemas.ReplenishmentSchema(), replenishment_body(replenishment), "replenishment")
    enrolment = OtpEnrolment(user_id=str(uuid.uuid4()), username="t", status="pending", created_at=now)
    body = {**enrolment_body(enrolment), **enrolment_secret_body("otpauth://totp/x?secret=ABC")}
    _lossless(schemas.EnrolmentSchema(), body, "enrolment")
    problem = {"type": "otp-invalid", "title": "otp invalid", "detail": "No.", "attempts_left": 3}
    _lossless(schemas.CommandStatusSchema(), {"state": "done", "status": 422, "body": None, "problem": problem}, "cmd")
    done = {"state": "done", "status": 201, "body": {"id": "x", "nested": {"a": [1]}}, "problem": None}
    _lossless(schemas.CommandStatusSchema(), done, "command status")
    for requisition_id, branch_id in ((uuid.uuid4(), str(uuid.uuid4())), (None, None)):
        alert = Alert(
            kind="awaiting_funds",
            severity="warning",
            message="Waiting for funds",
            requisition_id=requisition_id,
            branch_id=branch_id,
            source="ledger",
            raised_at=now,
        )
        _lossless(schemas.AlertSchema(), alert_body(alert), "alert")


def test_the_documented_states_are_the_services_states() -> None:
    """The enumerations the document declares are the services' own (a new state fails here,
    not in a client)."""
    from services.payment.domain import PaymentState
    from services.requisition.domain import Status

    assert set(schemas.REQUISITION_STATUSES) == {s.value for s in Status}
    assert set(schemas.PAYMENT_STATES) == {s.value for s in PaymentState}


def test_every_operation_is_documented_with_its_problems(api: Api) -> None:
    """No catch-all: each operation names the statuses it answers, problems as problem+json."""
    document = api.get("/api/v1/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            assert "default" not in responses, (method, path)
            if operation.get("security") == []:  # public: no credential, so no 401 for lacking one
                assert "503" in responses, (method, path)
            else:
                assert {"401", "403", "429", "503"} <= set(responses), (method, path)
                assert operation["x-permission"]["action"], (method, path)
            for status, response in responses.items():
                content = set(response.get("content", {}))
                if status.startswith(("4", "5")) and status != "414":
                    assert content == {"application/problem+json"}, (method, path, status)
                elif status == "204":
                    assert content == set(), (method, path, status)
                elif status.startswith("2") and path == "/api/v1/reports/{name}":
                    # A report comes as JSON, or as the CSV or PDF asked for.
                    assert content == {"application/json", "text/csv", "application/pdf"}, (method, path, status)
                elif status.startswith("2"):
                    assert content == {"application/json"}, (method, path, status)
