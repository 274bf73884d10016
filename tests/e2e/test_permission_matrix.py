"""The permission matrix, every cell: each route of the running gateway by each role (and no
credential, and a read-only token), the status the declared rule gives; then each role on a
branch in its scope and one out of it.

The cases are generated from the app's route table and the declarations of
``services.gateway.access`` (which name an action of ``shared.contracts.permissions``), so a
new endpoint is in the matrix the moment it exists, and one without a rule stops the app
(``test_an_endpoint_without_a_rule_cannot_be_served``).

Every request is sent with an empty body and identifiers nobody has: the guard answers before
the body or the path is looked at, so a refusal is exact, and a caller the rule lets through
gets the view's own answer (400, 404, 409, 422...), never one of the guard's refusals.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from services.gateway import identity
from services.gateway.access import Access, UndeclaredEndpoint, access_of, check_declared, routes
from services.gateway.app import create_app
from shared.config import Settings
from shared.contracts.permissions import Action, permission
from shared.contracts.roles import ROLES, can_see_branch
from shared.db.engine import Database
from tests.support import Api, requisition_body, scalar, wait_for

# The refusals the guard gives, by problem type; any other answer means the guard let it by.
GUARD_REFUSALS = {"unauthenticated", "sign-in-incomplete", "forbidden", "session-required", "read-only-token"}
SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Caller:
    name: str  # a role, "anonymous" or "read-only"
    token: str | None
    roles: frozenset[str]
    read_only: bool = False


def _app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture(scope="module")
def route_table(settings: Settings) -> list[tuple[str, str, Access]]:
    """(rule, method, access) of every route the gateway serves."""
    app = _app(settings)
    table = []
    for rule, method, endpoint in routes(app):
        access = access_of(app, endpoint, method)
        assert access is not None, f"{method} {rule} has no rule"  # create_app refuses that already
        table.append((rule, method, access))
    app.extensions["pettycash"].db.dispose()
    return table


def _person(dbs: dict[str, Database], roles: list[str], branches: list[str], *, read_only: bool = False) -> str:
    with dbs["gateway"].uow() as uow:
        name = f"matrix-{'-'.join(r[:4] for r in roles)}-{uuid.uuid4().hex[:6]}"
        user = identity.create_user(uow.session, name, name, roles, branches)
        token, _row = identity.new_token(uow.session, user, "matrix", read_only=read_only)
        uow.commit()
    return token


@pytest.fixture(scope="module")
def callers(stack: Any, dbs: dict[str, Database]) -> list[Caller]:
    """One new user per role, members of NBO-CBD; nobody; and a read-only token of an admin."""
    made = [Caller(role, _person(dbs, [role], ["NBO-CBD"]), frozenset({role})) for role in ROLES]
    made.append(Caller("anonymous", None, frozenset()))
    made.append(Caller("read-only", _person(dbs, ["admin"], ["HQ"], read_only=True), frozenset({"admin"}), True))
    users = scalar(dbs["gateway"], "SELECT count(*) FROM users")
    wait_for(lambda: scalar(dbs["approval"], "SELECT count(*) FROM approvers") >= users, 30, what="the directory")
    return made


def expected(access: Access, method: str, caller: Caller) -> tuple[int, str] | None:
    """The guard's refusal for this caller (status, problem type), or None: let through."""
    if access.public:
        return None
    if caller.token is None:
        return 401, "unauthenticated"
    if "signed-in" not in access.stages:  # a token is always signed in
        return 401, "sign-in-incomplete"
    if caller.read_only and method not in SAFE:
        return 403, "read-only-token"
    if access.sessions_only:
        return 403, "session-required"
    if caller.roles.isdisjoint(permission(access.action).roles):  # type: ignore[arg-type]
        return 403, "forbidden"
    return None


def expected_at(rule: str, access: Access, method: str, caller: Caller) -> tuple[int, str] | None:
    """As :func:`expected`; a page sends a person without a finished sign-in to the page that
    finishes it (a redirect) instead of answering 401."""
    want = expected(access, method, caller)
    if want is not None and want[0] == 401 and not rule.startswith("/api/"):
        return 302, ""
    return want


def concrete(rule: str) -> str:
    """A URL for a Flask rule, with identifiers that name nothing."""
    return re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: {"uuid": str(uuid.uuid4()), "int": "987654321"}.get(m.group(1) or "", "NO-SUCH-THING"),
        rule,
    )


def test_every_route_for_every_caller_answers_as_the_matrix_says(
    api: Api, route_table: list[tuple[str, str, Access]], callers: list[Caller]
) -> None:
    cases = refused = 0
    wrong = []
    for rule, method, access in route_table:
        url = concrete(rule)
        for caller in callers:
            body = {} if method in ("GET", "DELETE") else {"json": {}}
            answer = api.request(method, url, caller.token, allow_redirects=False, **body)
            want = expected_at(rule, access, method, caller)
            kind = _problem_type(answer)
            cases += 1
            if want is None:
                ok = answer.status_code < 500 and not (answer.status_code in (401, 403) and kind in GUARD_REFUSALS)
            else:
                refused += 1
                ok = (answer.status_code, kind) == want
            if not ok:
                wrong.append(
                    f"{caller.name:>16} {method} {rule}: {answer.status_code} {kind}, want {want or 'through'}"
                )
    assert not wrong, "\n".join(wrong)
    # The size of the matrix, for the record (README, "Who may do what").
    print(f"permission matrix: {cases} cases, {refused} refusals")
    assert cases == len(route_table) * len(callers)
    assert refused > len(route_table)  # every non-public route refuses the anonymous caller at least


def _problem_type(answer: Any) -> str:
    if not answer.headers.get("Content-Type", "").startswith("application/problem+json"):
        return ""
    return str(answer.json().get("type", ""))


def test_a_refusal_names_the_action_and_is_a_security_event(
    api: Api, callers: list[Caller], dbs: dict[str, Database]
) -> None:
    staff = next(c for c in callers if c.name == "staff")
    before = scalar(dbs["gateway"], "SELECT count(*) FROM security_events WHERE type = 'permission-denied'")
    answer = api.request("PUT", "/api/v1/approval-policy", staff.token, json={})
    assert answer.status_code == 403
    assert answer.json()["action"] == "set-policy"
    assert "admin" in answer.json()["detail"]
    after = scalar(dbs["gateway"], "SELECT count(*) FROM security_events WHERE type = 'permission-denied'")
    assert after == before + 1


# -- scope: a branch of one's own and one of another region ------------------------------


def _branch(dbs: dict[str, Database], code: str) -> tuple[str, str]:
    row = scalar(dbs["gateway"], "SELECT id || ' ' || region_id FROM branches WHERE code = :c", c=code)
    branch_id, region_id = str(row).split()
    return branch_id, region_id


def _requisition(api: Api, token: str, branch: str) -> str:
    created = api.post("/api/v1/requisitions", token, json=requisition_body(branch=branch))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_each_role_sees_a_requisition_in_its_scope_and_never_one_outside(
    api: Api, callers: list[Caller], dbs: dict[str, Database]
) -> None:
    asker_in = _person(dbs, ["staff"], ["NBO-CBD"])
    asker_out = _person(dbs, ["staff"], ["MLD-01"])
    inside, outside = _requisition(api, asker_in, "NBO-CBD"), _requisition(api, asker_out, "MLD-01")
    branches = {inside: _branch(dbs, "NBO-CBD"), outside: _branch(dbs, "MLD-01")}
    wrong = []
    for caller in callers:
        if caller.token is None or caller.read_only:
            continue
        with dbs["gateway"].uow() as uow:
            found = identity.authenticate(uow.session, caller.token)
        assert found is not None
        listed = {
            r["id"]
            for r in api.get("/api/v1/requisitions", caller.token, params={"scope": "all", "limit": 200}).json()[
                "items"
            ]
        }
        for rid, (branch_id, region_id) in branches.items():
            sees = can_see_branch(found.actor, branch_id, region_id)
            shown = api.get(f"/api/v1/requisitions/{rid}", caller.token).status_code
            if shown != (200 if sees else 404):
                wrong.append(f"{caller.name} GET requisition of {branch_id}: {shown}, sees={sees}")
            if not sees and rid in listed:
                wrong.append(f"{caller.name} lists a requisition out of scope")
    assert not wrong, "\n".join(wrong)


def test_each_role_reads_the_reports_of_its_scope_alone(
    api: Api, callers: list[Caller], dbs: dict[str, Database]
) -> None:
    """Every figure of a report is of a branch the reader sees (floats of NBO-CBD and MLD-01)."""
    treasury = next(c for c in callers if c.name == "treasury")
    for code in ("NBO-CBD", "MLD-01"):
        body = {"branch": code, "amount": {"minor_units": 10**9, "currency": "KES"}}
        assert api.post("/api/v1/floats", treasury.token, json=body).status_code in (201, 409)
    regions = {code: _branch(dbs, code) for code in ("NBO-CBD", "MLD-01")}
    wrong = []
    for caller in callers:
        if caller.token is None or caller.read_only:
            continue
        answer = api.get("/api/v1/reports/fund-health", caller.token)
        if caller.roles.isdisjoint(permission(Action.READ_REPORTS).roles):
            if answer.status_code != 403:
                wrong.append(f"{caller.name} read a report: {answer.status_code}")
            continue
        with dbs["gateway"].uow() as uow:
            found = identity.authenticate(uow.session, caller.token)
        assert found is not None
        shown = {row["branch"] for row in answer.json()["sections"][0]["rows"]}
        for code, (branch_id, region_id) in regions.items():
            if (code in shown) != can_see_branch(found.actor, branch_id, region_id):
                wrong.append(f"{caller.name} fund health of {code}: shown={code in shown}")
    assert not wrong, "\n".join(wrong)


def test_an_endpoint_without_a_rule_cannot_be_served(settings: Settings) -> None:
    app = _app(settings)
    try:
        app.add_url_rule("/api/v1/forgotten", "forgotten", lambda: "hello")
        with pytest.raises(UndeclaredEndpoint, match="GET /api/v1/forgotten"):
            check_declared(app)
    finally:
        app.extensions["pettycash"].db.dispose()
