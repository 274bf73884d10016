"""The privileged roles sign in with a second factor, over the running stack: the code is
checked by the payment service, which keeps the authenticator treasury pays with."""

from __future__ import annotations

import html
import re
import secrets
from typing import Any

import pyotp
import pytest
import requests

from services.gateway.passwords import Passwords
from shared.config import Settings
from shared.db.engine import Database
from tests.payment_support import Authenticator, Person, new_person
from tests.support import Api


class Browser:
    """A browser on the gateway: its cookie jar, and the CSRF token of its session."""

    def __init__(self, api: Api) -> None:
        self.base_url = api.base_url
        self.http = requests.Session()
        self.csrf = ""

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-CSRFToken": self.csrf} if self.csrf else {}
        answer = self.http.request(method, f"{self.base_url}{path}", headers=headers, timeout=20, **kwargs)
        if answer.headers.get("Content-Type", "").startswith("application/json") and "csrf_token" in answer.json():
            self.csrf = answer.json()["csrf_token"]  # a new one with every sign-in step
        return answer

    def sign_in(self, username: str, password: str) -> requests.Response:
        self.call("GET", "/api/v1/session")
        return self.call("POST", "/api/v1/session", json={"username": username, "password": password})


def with_password(settings: Settings, dbs: dict[str, Database], person: Person) -> str:
    password = "-".join(secrets.token_urlsafe(5) for _ in range(4))
    hashed = Passwords.from_settings(settings.identity).hash(password)
    with dbs["gateway"].engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET password_hash = %s WHERE id = %s", (hashed, person.user_id))
    return password


@pytest.fixture
def finance(api: Api, settings: Settings, dbs: dict[str, Database]) -> tuple[Person, str]:
    person = new_person(dbs, roles=("finance",))
    return person, with_password(settings, dbs, person)


def test_a_privileged_role_enrols_at_its_first_sign_in_then_gives_codes(api: Api, finance: tuple[Person, str]) -> None:
    person, password = finance
    browser = Browser(api)
    first = browser.sign_in(person.username, password)
    assert first.status_code == 200, first.text
    assert (first.json()["signed_in"], first.json()["next"]) == (False, "enrol")
    # Half signed in reaches the enrolment and nothing else.
    blocked = browser.call("GET", "/api/v1/ledger/trial-balance")
    assert (blocked.status_code, blocked.json()["type"]) == (401, "sign-in-incomplete")
    enrolled = browser.call("POST", "/api/v1/otp/enrolment")
    assert enrolled.status_code == 201, enrolled.text
    device = Authenticator(pyotp.parse_uri(enrolled.json()["provisioning_uri"]).secret)
    activated = browser.call("POST", "/api/v1/otp/activation", json={"code": device.code()})
    assert activated.status_code == 200, activated.text
    recovery = activated.json()["recovery_codes"]
    assert len(recovery) == 10
    assert browser.call("GET", "/api/v1/ledger/trial-balance").status_code == 200

    # The next sign-in asks for a code; a wrong one is refused, a right one completes it.
    again = Browser(api)
    assert again.sign_in(person.username, password).json()["next"] == "second-factor"
    assert again.call("GET", "/api/v1/ledger/trial-balance").status_code == 401
    wrong = again.call("POST", "/api/v1/session/second-factor", json={"code": device.wrong_code()})
    assert wrong.status_code == 422, wrong.text
    right = again.call("POST", "/api/v1/session/second-factor", json={"code": device.code()})
    assert right.status_code == 200, right.text
    assert right.json()["signed_in"] is True
    assert again.call("GET", "/api/v1/ledger/trial-balance").status_code == 200

    # A recovery code stands in for the authenticator once.
    lost_phone = Browser(api)
    lost_phone.sign_in(person.username, password)
    used = lost_phone.call("POST", "/api/v1/session/second-factor", json={"recovery_code": recovery[0]})
    assert used.status_code == 200, used.text
    replayed = Browser(api)
    replayed.sign_in(person.username, password)
    twice = replayed.call("POST", "/api/v1/session/second-factor", json={"recovery_code": recovery[0]})
    assert twice.status_code == 422, twice.text
    assert replayed.call("GET", "/api/v1/ledger/trial-balance").status_code == 401


def test_a_role_without_a_second_factor_is_signed_in_by_its_password(
    api: Api, settings: Settings, dbs: dict[str, Database]
) -> None:
    person = new_person(dbs, roles=("staff",), branches=("NBO-CBD",))
    browser = Browser(api)
    signed = browser.sign_in(person.username, with_password(settings, dbs, person))
    assert signed.json()["signed_in"] is True
    assert browser.call("GET", "/api/v1/requisitions").status_code == 200


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_the_pages_take_a_privileged_role_through_enrolment_and_its_code(api: Api, finance: tuple[Person, str]) -> None:
    person, password = finance
    browser = requests.Session()
    url = api.base_url

    def post(path: str, page: requests.Response, **form: str) -> requests.Response:
        return browser.post(f"{url}{path}", data={**form, "csrf_token": form_token(page.text)}, timeout=20)

    form = browser.get(f"{url}/sign-in", timeout=10)
    home = post("/sign-in", form, username=person.username, password=password)
    assert home.status_code == 200  # after the redirect
    assert "enrol an authenticator app" in home.text
    start = browser.get(f"{url}/enrol", timeout=10)
    scan = post("/enrol", start)
    assert scan.status_code == 200, scan.text
    assert 'src="data:image/svg+xml;base64,' in scan.text
    secret = re.search(r"otpauth://[^<]+", scan.text)
    assert secret
    device = Authenticator(pyotp.parse_uri(html.unescape(secret.group(0))).secret)
    codes = post("/enrol/code", scan, code=device.code())
    assert codes.status_code == 200, codes.text
    assert codes.text.count("<li><code>") == 10
    signed_out = post("/sign-out", codes)
    assert signed_out.url.endswith("/sign-in")

    again = post("/sign-in", signed_out, username=person.username, password=password)
    assert again.url.endswith("/sign-in/code")
    wrong = post("/sign-in/code", again, code=device.wrong_code())
    assert wrong.status_code == 422
    assert "error" in wrong.text
    done = post("/sign-in/code", wrong, code=device.code())
    assert done.status_code == 200
    assert f"Welcome, {person.username}" in done.text
