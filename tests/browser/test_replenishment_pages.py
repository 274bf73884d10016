"""Replenishments in the browser: a treasurer asks for money for a float, a finance officer
approves it, and the float's available balance rises by it; each page checked with axe-core."""

from __future__ import annotations

from typing import Any

from shared.db.engine import Database
from tests.browser.conftest import Person
from tests.browser.test_money_chain import _give_password
from tests.browser.test_sign_in_pages import sign_in
from tests.payment_support import Authenticator, enrol, ensure_float, new_person
from tests.support import Api, float_of, wait_for

HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'


def _signed_in_with_code(visit: Any, api: Api, dbs: dict[str, Database], settings: Any, role: str) -> Any:
    officer = new_person(dbs, (role,))
    device: Authenticator = enrol(api, officer)
    tab = visit()
    page = sign_in(tab, Person(officer.username, _give_password(dbs, settings, officer.user_id), officer.user_id))
    page.get_by_label("Code", exact=True).fill(device.code())
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    return tab


def test_treasury_asks_for_a_replenishment_and_finance_approves_it(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    ensure_float(api, tokens)
    before = float_of(api, tokens["aud"], "NBO-CBD")["available"]

    asking = _signed_in_with_code(visit, api, dbs, settings, "treasury")
    page = asking.page
    page.get_by_role("link", name="Replenishments").click()
    page.get_by_role("heading", name="Replenishments", exact=True).wait_for()
    assert asking.check("replenishments-treasury") == []
    page.get_by_label("Float").select_option("NBO-CBD KES")
    page.get_by_label("Amount").fill("12,345.60")
    page.get_by_label("Why").fill(f"Month end {HOSTILE}")
    with page.expect_navigation():
        page.get_by_role("button", name="Ask for it").click()
    waiting = page.locator("li", has_text="12,345.60")
    wait_for(lambda: waiting.count() >= 1 or page.reload() is None, 15, 0.3, "the request listed")
    assert HOSTILE in waiting.first.inner_text()  # shown as text
    assert page.locator("img[src=x]").count() == 0
    assert "Your own request" not in page.inner_text("main")  # treasury does not decide
    assert asking.check("replenishment-asked") == []

    deciding = _signed_in_with_code(visit, api, dbs, settings, "finance")
    desk = deciding.page
    desk.get_by_role("link", name="Replenishments").click()
    item = desk.locator("li", has_text="12,345.60").filter(has=desk.get_by_role("button", name="Approve"))
    wait_for(lambda: item.count() == 1 or desk.reload() is None, 15, 0.3, "the request for finance")
    assert deciding.check("replenishment-to-decide") == []
    item.get_by_label("Comment on the request for NBO-CBD").fill("Agreed")
    with desk.expect_navigation():
        item.get_by_role("button", name="Approve").click()
    decided = desk.locator("li", has_text="Approved")
    wait_for(lambda: decided.filter(has_text="Agreed").count() == 1 or desk.reload() is None, 15, 0.3, "the decision")
    assert deciding.check("replenishment-decided") == []
    wait_for(lambda: float_of(api, tokens["aud"], "NBO-CBD")["available"] == before + 1_234_560, 15, what="the money")


def test_a_bad_amount_is_refused_in_words_and_keeps_what_was_typed(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    ensure_float(api, tokens)
    tab = _signed_in_with_code(visit, api, dbs, settings, "treasury")
    tab.open("/replenishments")
    tab.page.get_by_label("Amount").fill("12.345")
    tab.page.get_by_label("Why").fill("Float low")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Ask for it").click()
    assert "at most 2 decimals" in tab.page.get_by_role("alert").inner_text()
    assert tab.page.get_by_label("Why").input_value() == "Float low"
    assert tab.check("replenishment-bad-amount") == []
