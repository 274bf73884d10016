"""Signing in, on a gateway app in this process (on the test PostgreSQL and Redis) whose clock
the test moves: sessions that end on time, fixation, CSRF, passwords, lockout and each rate
limit with its ``Retry-After``.

Nothing here needs a service behind the gateway; the second factor, which the payment
service checks, is tested over the running stack (tests/e2e/test_sessions.py).
"""

from __future__ import annotations

import re
import secrets
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import identity
from services.gateway.app import create_app
from services.gateway.models import User as UserRow
from services.gateway.passwords import Passwords
from services.gateway.sessions import COOKIE
from shared.config import Settings
from shared.db.engine import Database
from shared.db.types import utcnow
from tests.support import ManualClock, scalar

Clock = ManualClock


@dataclass
class User:
    username: str
    password: str
    user_id: str
    token: str


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


@pytest.fixture
def make_app(settings: Settings, clock: Clock) -> Iterator[Callable[..., Flask]]:
    """A gateway app on this clock; ``make_app(lockout_failures=3, sign_in_address="3/day")``.

    Its rate limits count in this app's memory, so no other test shares them."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        limits = {k: overrides.pop(k) for k in list(overrides) if k in settings.identity.rate_limits}
        identity_settings = replace(
            settings.identity,
            rate_limit_storage_url="memory://",
            rate_limits={**settings.identity.rate_limits, **limits},
            **overrides,
        )
        app = create_app(replace(settings, identity=identity_settings), clock=clock)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["pettycash"].db.dispose()


@pytest.fixture
def user(settings: Settings, dbs: dict[str, Database], tokens: dict[str, str]) -> User:
    """A member of staff with a strong password and a token (staff need no second factor);
    ``tokens`` has seeded the demo organisation it belongs to."""
    return new_user(settings, dbs, ["staff"])


def new_user(settings: Settings, dbs: dict[str, Database], roles: list[str]) -> User:
    username = f"signin-{uuid.uuid4().hex[:10]}"
    password = "-".join(secrets.token_urlsafe(5) for _ in range(4))
    with dbs["gateway"].uow() as uow:
        created = identity.create_user(uow.session, username, "Sign In Tester", roles, ["NBO-CBD"])
        created.password_hash = Passwords.from_settings(settings.identity).hash(password)
        token = identity.issue_token(uow.session, created, "test")
        uow.commit()
        return User(username, password, str(created.id), token)


def sign_in(client: FlaskClient, login: str, password: str, **kwargs: Any) -> Any:
    return client.post("/api/v1/session", json={"username": login, "password": password}, **kwargs)


def csrf_of(client: FlaskClient) -> str:
    return str(client.get("/api/v1/session").json["csrf_token"])


def cookie_of(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


# -- sessions -----------------------------------------------------------------------------


def test_signing_in_gives_a_new_session_id(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app().test_client()
    token = csrf_of(client)  # the sign-in page opened an anonymous session
    before = cookie_of(client)
    assert before
    # Riding on that session's cookie, the sign-in needs its CSRF token like any other change.
    assert sign_in(client, user.username, user.password).status_code == 403
    signed = sign_in(client, user.username, user.password, headers={"X-CSRFToken": token})
    assert signed.status_code == 200, signed.json
    assert signed.json["signed_in"] is True
    after = cookie_of(client)
    assert after
    assert after != before
    # The id an attacker planted before the sign-in is worth nothing after it.
    planted = make_app().test_client()
    planted.set_cookie(COOKIE, before)
    assert planted.get("/api/v1/account").status_code == 401


def test_the_session_cookie_is_http_only_and_same_site_lax(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app().test_client()
    signed = sign_in(client, user.username, user.password)
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    over_tls = sign_in(make_app().test_client(), user.username, user.password, base_url="https://localhost")
    assert "Secure" in over_tls.headers["Set-Cookie"]
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_session_ends_when_idle_too_long(make_app: Callable[..., Flask], user: User, clock: Clock) -> None:
    client = make_app(session_idle_seconds=1800).test_client()
    assert sign_in(client, user.username, user.password).status_code == 200
    clock.advance(minutes=29)
    assert client.get("/api/v1/account").status_code == 200  # and that use keeps it alive
    clock.advance(minutes=29)
    assert client.get("/api/v1/account").status_code == 200
    clock.advance(minutes=31)
    gone = client.get("/api/v1/account")
    assert gone.status_code == 401
    assert gone.headers["WWW-Authenticate"]


def test_a_session_ends_after_its_absolute_lifetime_however_busy(
    make_app: Callable[..., Flask], user: User, clock: Clock
) -> None:
    client = make_app(session_idle_seconds=1800, session_absolute_seconds=12 * 3600).test_client()
    assert sign_in(client, user.username, user.password).status_code == 200
    for _ in range(47):  # every quarter of an hour for 11 h 45 min
        clock.advance(minutes=15)
        assert client.get("/api/v1/account").status_code == 200
    clock.advance(minutes=16)
    assert client.get("/api/v1/account").status_code == 401


def test_signing_out_ends_the_session_at_once(make_app: Callable[..., Flask], user: User) -> None:
    app = make_app()
    client = app.test_client()
    assert sign_in(client, user.username, user.password).status_code == 200
    stolen = cookie_of(client)
    assert client.delete("/api/v1/session", headers={"X-CSRFToken": csrf_of(client)}).status_code == 200
    replay = app.test_client()
    replay.set_cookie(COOKIE, stolen or "")
    assert replay.get("/api/v1/account").status_code == 401


def test_signing_out_everywhere_ends_every_session_of_the_user(
    make_app: Callable[..., Flask], user: User, clock: Clock
) -> None:
    app = make_app()
    laptop, phone = app.test_client(), app.test_client()
    assert sign_in(laptop, user.username, user.password).status_code == 200
    assert sign_in(phone, user.username, user.password).status_code == 200
    ended = laptop.delete("/api/v1/sessions", headers={"X-CSRFToken": csrf_of(laptop)})
    assert ended.status_code == 200
    assert ended.json["sessions_ended"] >= 2
    clock.advance(seconds=1)
    assert phone.get("/api/v1/account").status_code == 401
    assert laptop.get("/api/v1/account").status_code == 401
    # API tokens stay (they are revoked one by one).
    assert (
        app.test_client().get("/api/v1/account", headers={"Authorization": f"Bearer {user.token}"}).status_code == 200
    )


def test_deactivation_ends_sessions_and_tokens_at_once(
    make_app: Callable[..., Flask], user: User, tokens: dict[str, str]
) -> None:
    app = make_app()
    browser = app.test_client()
    assert sign_in(browser, user.username, user.password).status_code == 200
    bearer = {"Authorization": f"Bearer {user.token}"}
    assert app.test_client().get("/api/v1/account", headers=bearer).status_code == 200
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    done = app.test_client().post(f"/api/v1/admin/users/{user.user_id}/deactivate", headers=admin)
    assert done.status_code == 200, done.json
    assert done.json["active"] is False
    assert browser.get("/api/v1/account").status_code == 401
    assert app.test_client().get("/api/v1/account", headers=bearer).status_code == 401
    assert sign_in(app.test_client(), user.username, user.password).status_code == 401


# -- CSRF ---------------------------------------------------------------------------------


def test_a_state_change_on_a_session_needs_its_own_csrf_token(make_app: Callable[..., Flask], user: User) -> None:
    app = make_app()
    client, other = app.test_client(), app.test_client()
    assert sign_in(client, user.username, user.password).status_code == 200
    assert sign_in(other, user.username, user.password).status_code == 200
    body = {"name": "script"}
    for headers in ({}, {"X-CSRFToken": "not-a-token"}, {"X-CSRFToken": csrf_of(other)}):
        refused = client.post("/api/v1/account/tokens", json=body, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json["type"] == "csrf-failed"
    assert client.get("/api/v1/account/tokens").status_code == 200  # reads need none
    made = client.post("/api/v1/account/tokens", json=body, headers={"X-CSRFToken": csrf_of(client)})
    assert made.status_code == 201, made.json
    # A bearer call carries no cookie a page elsewhere could make a browser send: no token needed.
    bearer = app.test_client().delete(
        f"/api/v1/account/tokens/{made.json['id']}", headers={"Authorization": f"Bearer {user.token}"}
    )
    assert bearer.status_code == 204


def test_a_sign_in_form_is_checked_against_the_session_its_page_opened(
    make_app: Callable[..., Flask], user: User
) -> None:
    client = make_app().test_client()
    form = {"username": user.username, "password": user.password}
    assert client.post("/api/v1/session", data=form).status_code == 403  # a form posted from elsewhere
    assert client.post("/api/v1/session", data=form, headers={"X-CSRFToken": csrf_of(client)}).status_code in (
        200,
        400,  # the API takes JSON; what matters is that the CSRF check let it by
    )


# -- passwords and sign-in ----------------------------------------------------------------


def test_weak_and_common_passwords_are_refused(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app().test_client()
    assert sign_in(client, user.username, user.password).status_code == 200
    csrf = {"X-CSRFToken": csrf_of(client)}
    for weak in ("short-pw-1", "password12345", "qwertyuiop123", "aaaaaaaaaaaaaaaa", f"{user.username}2024!"):
        answer = client.post(
            "/api/v1/account/password", json={"current_password": user.password, "new_password": weak}, headers=csrf
        )
        assert answer.status_code == 422, weak
        assert answer.json["type"] == "weak-password", weak
    wrong_current = client.post(
        "/api/v1/account/password",
        json={"current_password": "not-my-password", "new_password": "plinth orchard galaxy 93 viaduct"},
        headers=csrf,
    )
    assert wrong_current.status_code in (401, 403, 422)
    assert wrong_current.json["type"] != "weak-password"


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer_in_the_same_time(
    make_app: Callable[..., Flask], user: User
) -> None:
    client = make_app().test_client()
    wrong = sign_in(client, user.username, "not the password at all")
    unknown = sign_in(client, f"nobody-{uuid.uuid4().hex[:8]}", "not the password at all")
    assert (wrong.status_code, wrong.json) == (unknown.status_code, unknown.json)
    assert wrong.status_code == 401

    def seconds(login: str) -> float:
        started = time.perf_counter()
        sign_in(client, login, "not the password at all")
        return time.perf_counter() - started

    known = statistics.median(seconds(user.username) for _ in range(7))
    nobody = statistics.median(seconds(f"nobody-{uuid.uuid4().hex[:8]}") for _ in range(7))
    # The same Argon2 work either way (a dummy hash for the unknown): the same order of time.
    assert 1 / 3 < known / nobody < 3, (known, nobody)


def test_a_hash_made_with_old_parameters_is_redone_at_sign_in(
    make_app: Callable[..., Flask], user: User, dbs: dict[str, Database]
) -> None:
    before = scalar(dbs["gateway"], "SELECT password_hash FROM users WHERE id = :u", u=user.user_id)
    assert "t=1," in before
    client = make_app(argon2_time_cost=2).test_client()
    assert sign_in(client, user.username, user.password).status_code == 200
    after = scalar(dbs["gateway"], "SELECT password_hash FROM users WHERE id = :u", u=user.user_id)
    assert "t=2," in after
    assert sign_in(make_app(argon2_time_cost=2).test_client(), user.username, user.password).status_code == 200


def test_an_account_locks_after_repeated_failures_until_the_delay_passes(
    make_app: Callable[..., Flask], user: User, clock: Clock, dbs: dict[str, Database]
) -> None:
    client = make_app(lockout_failures=3, lockout_seconds=900).test_client()
    for _ in range(3):
        assert sign_in(client, user.username, "wrong password!").status_code == 401
    locked = sign_in(client, user.username, user.password)
    assert locked.status_code == 429
    assert locked.json["type"] == "account-locked"
    assert 0 < int(locked.headers["Retry-After"]) <= 900
    events = scalar(
        dbs["gateway"],
        "SELECT count(*) FROM security_events WHERE type = 'account-locked' AND subject_id = :u",
        u=user.user_id,
    )
    assert events == 1
    clock.advance(seconds=901)
    assert sign_in(client, user.username, user.password).status_code == 200


def test_an_admin_unlocks_an_account(make_app: Callable[..., Flask], user: User, tokens: dict[str, str]) -> None:
    app = make_app(lockout_failures=2)
    client = app.test_client()
    for _ in range(2):
        sign_in(client, user.username, "wrong password!")
    assert sign_in(client, user.username, user.password).status_code == 429
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    assert app.test_client().post(f"/api/v1/admin/users/{user.user_id}/unlock", headers=admin).status_code == 200
    assert sign_in(client, user.username, user.password).status_code == 200


# -- rate limits --------------------------------------------------------------------------


# The limits count in windows of the clock's minutes, hours or days, and weigh the last window's
# count by how much of it is left (limits' sliding window counter): attempts that straddle the
# turn of a window get one more through. The tests count per day, so their few seconds of
# attempts straddle a turn once in tens of thousands of runs, not once in forty.


def assert_limited(answer: Any) -> None:
    assert answer.status_code == 429, answer.json
    assert answer.json["type"] == "rate-limited"
    assert int(answer.headers["Retry-After"]) > 0


def test_sign_in_attempts_are_limited_per_client_address(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app(sign_in_address="3/day").test_client()
    here = {"environ_base": {"REMOTE_ADDR": "192.0.2.10"}}
    for n in range(3):
        assert sign_in(client, f"guess-{n}", "wrong password!", **here).status_code == 401
    assert_limited(sign_in(client, user.username, user.password, **here))
    # Another address is not held up.
    elsewhere = {"environ_base": {"REMOTE_ADDR": "192.0.2.11"}}
    assert sign_in(client, user.username, user.password, **elsewhere).status_code == 200


def test_sign_in_attempts_are_limited_per_account(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app(sign_in_account="2/day").test_client()
    for n in range(2):
        answer = sign_in(client, user.username, "wrong password!", environ_base={"REMOTE_ADDR": f"192.0.2.{n}"})
        assert answer.status_code == 401
    assert_limited(sign_in(client, user.username.upper(), user.password, environ_base={"REMOTE_ADDR": "192.0.2.9"}))


def test_requests_are_limited_per_api_token(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app(api_token="3/day").test_client()
    bearer = {"Authorization": f"Bearer {user.token}"}
    for _ in range(3):
        assert client.get("/api/v1/account", headers=bearer).status_code == 200
    assert_limited(client.get("/api/v1/account", headers=bearer))


def test_password_reset_requests_are_limited(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app(password_reset="2/hour").test_client()
    for _ in range(2):
        assert client.post("/api/v1/password-reset", json={"username": user.username}).status_code == 202
    assert_limited(client.post("/api/v1/password-reset", json={"username": user.username}))


# -- the sign-in pages --------------------------------------------------------------------


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_a_person_signs_in_and_out_with_the_pages(make_app: Callable[..., Flask], user: User) -> None:
    client = make_app().test_client()
    assert client.get("/").headers["Location"].endswith("/sign-in")
    shown = client.get("/sign-in")
    assert shown.status_code == 200
    assert "script-src 'self'" in shown.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in shown.headers["Content-Security-Policy"]
    token = form_token(shown.text)
    form = {"username": user.username, "password": user.password}
    assert client.post("/sign-in", data=form).status_code == 403  # no CSRF token: refused
    hostile = client.post(
        "/sign-in", data={"username": '"><img src=x onerror=alert(1)>', "password": "x" * 12, "csrf_token": token}
    )
    assert hostile.status_code == 401
    assert "<img src=x" not in hostile.text
    assert "&#34;&gt;&lt;img" in hostile.text
    assert "is wrong" in hostile.text or "wrong" in hostile.text
    signed = client.post("/sign-in", data={**form, "csrf_token": token})
    assert signed.status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    assert f"Welcome, {user.username}" in home.text
    assert client.post("/sign-out", data={"csrf_token": form_token(home.text)}).status_code == 303
    assert client.get("/").headers["Location"].endswith("/sign-in")


def test_a_password_is_changed_and_set_by_link_with_the_pages(
    make_app: Callable[..., Flask], user: User, dbs: dict[str, Database]
) -> None:
    app = make_app()
    client = app.test_client()
    token = form_token(client.get("/sign-in").text)
    client.post("/sign-in", data={"username": user.username, "password": user.password, "csrf_token": token})
    form = client.get("/account/password")
    assert form.status_code == 200
    change = {"current_password": user.password, "csrf_token": form_token(form.text)}
    weak = client.post(
        "/account/password", data={**change, "new_password": "password1234", "repeat_password": "password1234"}
    )
    assert weak.status_code == 422
    assert "stronger" in weak.text
    strong = "plinth orchard galaxy viaduct"
    done = client.post("/account/password", data={**change, "new_password": strong, "repeat_password": strong})
    assert done.status_code == 200
    assert "Password changed" in done.text

    # An admin's link (as mailed) sets it again, once.
    context = app.extensions["pettycash"]
    with dbs["gateway"].uow() as uow:
        row = uow.session.get(UserRow, uuid.UUID(user.user_id))
        link = context.accounts.make_link(uow.session, row, "reset")
        uow.commit()
    link_token = link.url.split("token=")[1]
    stranger = app.test_client()
    assert stranger.get("/password/set?token=nope").status_code == 404
    page = stranger.get(f"/password/set?token={link_token}")
    assert page.status_code == 200
    fresh = "lantern quarry mosaic thistle"
    form = {"token": link_token, "password": fresh, "repeat_password": fresh, "csrf_token": form_token(page.text)}
    assert "Password set" in stranger.post("/password/set", data=form).text
    assert stranger.post("/password/set", data=form).status_code == 404  # used
    assert sign_in(app.test_client(), user.username, fresh).status_code == 200


def test_an_expired_token_and_a_demo_token_in_production_are_refused(
    make_app: Callable[..., Flask], user: User, tokens: dict[str, str], dbs: dict[str, Database], clock: Clock
) -> None:
    with dbs["gateway"].uow() as uow:
        row = uow.session.get(UserRow, uuid.UUID(user.user_id))
        short, _ = identity.new_token(uow.session, row, "short", expires_at=clock.now + timedelta(days=1))
        uow.commit()
    app = make_app()
    bearer = {"Authorization": f"Bearer {short}"}
    assert app.test_client().get("/api/v1/account", headers=bearer).status_code == 200
    clock.advance(days=1, seconds=1)
    assert app.test_client().get("/api/v1/account", headers=bearer).status_code == 401
    demo = {"Authorization": f"Bearer {tokens['alice']}"}
    assert make_app().test_client().get("/api/v1/account", headers=demo).status_code == 200
    assert make_app(demo_tokens=False).test_client().get("/api/v1/account", headers=demo).status_code == 401


def test_a_person_gets_a_page_for_an_error_and_a_script_gets_a_problem(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert "<h1>Not found</h1>" in page.text
    assert "Traceback" not in page.text
    api = client.get("/api/v1/no/such/thing", headers={"Accept": "text/html"})
    assert (api.status_code, api.mimetype) == (404, "application/problem+json")
    script = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert script.mimetype == "application/problem+json"
