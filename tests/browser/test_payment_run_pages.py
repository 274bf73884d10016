"""Payment runs in the browser: a treasurer filters the ready payments, sees their count and total,
authorises them with one code; above the threshold the run waits, its maker cannot authorise it
again, and a second treasurer's code pays every one of them, the page following the progress; a
waiting run is cancelled with a reason, and its payments are ready for another run."""

from __future__ import annotations

from typing import Any

from shared.db.engine import Database
from tests.browser.conftest import Person
from tests.browser.test_money_chain import _give_password
from tests.browser.test_replenishment_pages import HOSTILE
from tests.browser.test_sign_in_pages import sign_in
from tests.payment_support import Authenticator, enrol, new_person, reserved_requisition
from tests.support import Api, wait_for

# A distinctive amount, so the filter keeps this test's requisitions and no other's.
AMOUNT = {"minor_units": 123_456, "currency": "KES"}
TYPED = "1234.56"


def _treasurer(visit: Any, api: Api, dbs: dict[str, Database], settings: Any) -> tuple[Any, Authenticator]:
    officer = new_person(dbs, ("treasury",))
    device = enrol(api, officer)
    tab = visit()
    page = sign_in(tab, Person(officer.username, _give_password(dbs, settings, officer.user_id), officer.user_id))
    page.get_by_label("Code", exact=True).fill(device.code())
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    return tab, device


def _show_ready(page: Any, typed: str, heading: str, branch: str | None = None, method: str | None = None) -> None:
    """From the home page, the ready payments of one amount (of a branch and method, if given)."""
    page.get_by_role("link", name="Floats and payments").click()
    page.get_by_role("link", name="Pay many at once").click()
    if branch is not None:
        page.get_by_label("Branch").select_option(branch)
    if method is not None:
        page.get_by_label("Paid by").select_option(method)
    page.get_by_label("From amount").fill(typed)
    page.get_by_label("To amount").fill(typed)
    with page.expect_navigation():
        page.get_by_role("button", name="Show them").click()
    page.get_by_role("heading", name=heading).wait_for()


def test_a_run_is_chosen_authorised_by_two_officers_and_followed_until_paid(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    purposes = [f"Run item {n} {HOSTILE}" for n in range(5)]
    for purpose in purposes:
        reserved_requisition(api, tokens, settings, dbs, amount=AMOUNT, purpose=purpose)

    maker, maker_app = _treasurer(visit, api, dbs, settings)
    page = maker.page
    _show_ready(page, TYPED, "Ready to pay: 5, Ksh6,172.80", branch="NBO-CBD", method="cash")
    assert page.locator("img[src=x]").count() == 0  # the hostile purposes are text
    assert HOSTILE in page.inner_text("main")
    assert maker.check("payment-run-new") == []
    page.get_by_label("Code from your authenticator").fill(maker_app.code())
    with page.expect_navigation():
        page.get_by_role("button", name="Authorise the run").click()
    page.get_by_role("heading", name="Payment run of 5: Ksh6,172.80").wait_for()
    assert "Waiting for another treasury officer" in page.inner_text("main")
    assert page.get_by_role("button", name="Authorise and pay").count() == 0  # not the maker's to check
    assert maker.check("payment-run-awaiting") == []
    run_url = page.url

    checker, checker_app = _treasurer(visit, api, dbs, settings)
    desk = checker.page
    desk.get_by_role("link", name="Payment runs").click()
    desk.get_by_role("heading", name="Payment runs").wait_for()
    assert checker.check("payment-runs") == []
    desk.goto(run_url)
    desk.get_by_label("Code from your authenticator").fill(checker_app.code())
    with desk.expect_navigation():
        desk.get_by_role("button", name="Authorise and pay").click()
    # The page follows the payments by itself (htmx polls the progress) until all are paid.
    desk.get_by_role("heading", name="Progress: Finished").wait_for(timeout=30_000)
    assert "5 paid, 0 paying, 0 failed, 0 left out" in desk.inner_text("main")
    assert checker.check("payment-run-finished") == []
    wait_for(lambda: page.reload() is not None and "Finished" in page.inner_text("main"), 15, 0.5, "the maker's view")


def test_a_waiting_run_is_cancelled_with_its_reason_and_its_payments_are_ready_again(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    amount, typed = {"minor_units": 123_457, "currency": "KES"}, "1234.57"
    for n in range(5):
        reserved_requisition(api, tokens, settings, dbs, amount=amount, purpose=f"Cancelled run item {n}")
    maker, maker_app = _treasurer(visit, api, dbs, settings)
    page = maker.page

    ready = "Ready to pay: 5, Ksh6,172.85"
    _show_ready(page, typed, ready)
    page.get_by_label("Code from your authenticator").fill(maker_app.code())
    with page.expect_navigation():
        page.get_by_role("button", name="Authorise the run").click()
    page.get_by_role("heading", name="Payment run of 5: Ksh6,172.85").wait_for()
    page.get_by_label("Why cancel (optional)").fill(f"Wrong branch {HOSTILE}")
    with page.expect_navigation():
        page.get_by_role("button", name="Cancel the run").click()
    main = page.inner_text("main")
    assert f"Wrong branch {HOSTILE}" in main  # shown as text
    assert page.locator("img[src=x]").count() == 0
    assert "Cancelled by" in main
    assert "Nothing of it was paid" in main
    assert main.count("Not paid (the run was cancelled)") == 5
    assert page.get_by_role("button", name="Cancel the run").count() == 0
    assert maker.check("payment-run-cancelled") == []
    page.goto(page.url.split("/payment-runs")[0] + "/")
    _show_ready(page, typed, ready)  # nothing of it was paid: the same five are ready for another run
