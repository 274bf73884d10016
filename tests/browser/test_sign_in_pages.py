"""Signing in and out in a real Chromium: by mouse and by keyboard alone, on a phone and a
desktop; every page screenshotted and checked with axe-core; hostile input inert; the CSP in
force; a form without its CSRF token refused."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import PHONE


def sign_in(visit: Any, person: Any) -> Any:
    page = visit.open("/")  # anonymous: sent to the sign-in form
    assert page.url.endswith("/sign-in")
    page.get_by_label("Username or e-mail address").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_staff_sign_in_and_out_on_a_phone(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit(viewport=PHONE)
    page = tab.open("/sign-in")
    assert tab.check("sign-in") == []
    sign_in(tab, person)
    page.get_by_role("heading", name=f"Welcome, {person.username}").wait_for()
    assert tab.check("home") == []
    page.get_by_role("link", name="Change your password").click()
    page.get_by_role("heading", name="Change your password").wait_for()
    assert tab.check("password") == []
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.url.endswith("/sign-in")
    assert tab.open("/").url.endswith("/sign-in")  # the session is over


def test_signing_in_needs_no_mouse(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    page = tab.open("/sign-in")
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "username":
            break
    assert page.evaluate("document.activeElement.id") == "username"
    page.keyboard.type(person.username)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(person.password)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=f"Welcome, {person.username}").wait_for()


def test_a_wrong_password_is_said_in_words_and_hostile_input_stays_text(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    page = tab.open("/sign-in")
    hostile = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    page.get_by_label("Username or e-mail address").fill(hostile)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "wrong" in alert.inner_text()
    assert page.get_by_label("Username or e-mail address").input_value() == hostile  # kept, as text
    assert page.locator("img[src=x]").count() == 0
    assert tab.check("wrong-password") == []
    page.get_by_label("Username or e-mail address").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=f"Welcome, {person.username}").wait_for()


def test_a_form_without_its_csrf_token_is_refused(visit: Any) -> None:
    tab = visit()
    page = tab.open("/sign-in")
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.get_by_label("Username or e-mail address").fill("someone")
    page.get_by_label("Password").fill("whatever it is")
    with page.expect_response(lambda r: r.url.endswith("/sign-in") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 403
    tab.console_errors.clear()  # the browser reports the 403 it was shown; that is the point


def test_a_signed_in_form_without_its_csrf_token_changes_nothing(visit: Any, person_factory: Any) -> None:
    """The token removed from a signed-in person's form (a forged post rides on their cookie)."""
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    page = sign_in(tab, person)
    tab.open("/account/password")
    page.evaluate("document.querySelectorAll('main input[name=csrf_token]').forEach(i => i.remove())")
    page.get_by_label("Current password").fill(person.password)
    page.get_by_label("New password", exact=True).fill("correct horse battery staple 42")
    page.get_by_label("New password again").fill("correct horse battery staple 42")
    with page.expect_response(lambda r: r.url.endswith("/account/password") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Change password").click()
    assert answer.value.status == 403
    assert "Password changed" not in page.inner_text("main")
    tab.console_errors.clear()


def test_the_content_security_policy_blocks_inline_script(visit: Any) -> None:
    tab = visit()
    page = tab.open("/sign-in")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = true';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("window.ran === undefined")
    assert any("Content Security Policy" in e for e in tab.console_errors)
    tab.console_errors.clear()
