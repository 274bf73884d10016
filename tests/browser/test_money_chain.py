"""The whole chain in the browser: a member of staff on a phone asks, a branch manager
approves from the inbox, a treasurer signs in with the second factor and pays with a code,
and the requester sees it paid; each page checked with axe-core."""

from __future__ import annotations

from typing import Any

from shared.db.engine import Database
from tests.browser.conftest import PHONE, Person
from tests.browser.test_sign_in_pages import sign_in
from tests.payment_support import enrol, ensure_float, new_person
from tests.support import Api, wait_for


def test_a_requisition_goes_from_a_phone_to_paid_through_the_pages(
    visit: Any, person_factory: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    ensure_float(api, tokens)
    requester = person_factory(["staff"], ["NBO-CBD"])
    manager = person_factory(["branch_manager"], ["NBO-CBD"])
    purpose = f"Printer toner {requester.username}"

    asking = visit(viewport=PHONE)
    page = sign_in(asking, requester)
    asking.open("/requisitions/new")
    page.get_by_label("Amount").fill("4500")
    page.get_by_label("Purpose").fill(purpose)
    page.get_by_label("Name").fill("Text Book Centre")
    page.get_by_label("Paid by").select_option("mobile_money")
    page.get_by_label("Phone or account number (mobile money and bank)").fill("+254700000001")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    page.get_by_role("heading", name=purpose).wait_for()
    url = page.url
    wait_for(lambda: "Waiting for approval" in page.reload().text(), 20, 0.3, "routing")
    voucher = page.locator("dt:text-is('Voucher') + dd").inner_text()

    approving = visit()
    desk = sign_in(approving, manager)
    desk.get_by_role("link", name="Waiting for your decision").click()
    wait_for(lambda: voucher in desk.reload().text(), 20, 0.3, "the inbox")
    assert approving.check("inbox") == []
    desk.get_by_role("link", name=voucher, exact=False).click()
    desk.get_by_role("heading", name=purpose).wait_for()
    assert approving.check("to-decide") == []
    desk.get_by_label("Comment (a reason is needed to reject or send back)").fill("Fine")
    with desk.expect_navigation():
        desk.get_by_role("button", name="Approve").click()
    wait_for(lambda: "ready to pay" in desk.reload().text(), 20, 0.3, "the reservation")

    # A treasurer with an authenticator, signing in with it.
    cashier = new_person(dbs)
    device = enrol(api, cashier)
    password = _give_password(dbs, settings, cashier.user_id)
    paying = visit()
    till = sign_in(paying, Person(cashier.username, password, cashier.user_id))
    till.get_by_label("Code", exact=True).fill(device.code())
    till.get_by_role("button", name="Continue").click()
    till.get_by_role("link", name="Floats and payments").click()
    till.get_by_role("heading", name="Floats and payments").wait_for()
    assert paying.check("treasury") == []
    till.get_by_role("link", name=voucher, exact=False).click()
    till.get_by_label("The code your authenticator shows now").fill(device.code())
    assert paying.check("pay") == []
    with till.expect_navigation():
        till.get_by_role("button", name="Pay").click()
    wait_for(lambda: "Paid" in till.reload().text(), 30, 0.3, "the payment")

    page.goto(url)
    wait_for(lambda: "Paid" in page.reload().text(), 20, 0.3, "the requester's view")
    assert "Paid" in page.inner_text(".timeline")
    assert cashier.username in page.inner_text("main")  # the payment says who paid
    assert asking.check("paid") == []

    # An auditor reads it among everything in scope, and may change nothing.
    auditor = person_factory(["auditor"], ["HQ"])
    reading = visit()
    books = sign_in(reading, auditor)
    books.get_by_role("link", name="all in my scope").click()
    books.get_by_label("Status").select_option("paid")
    with books.expect_navigation():
        books.get_by_role("button", name="Show").click()
    assert reading.check("in-scope") == []
    books.get_by_role("link", name=purpose).click()
    books.get_by_role("heading", name="Payment").wait_for()
    assert books.get_by_role("button").count() == 1  # only "Sign out"
    assert reading.check("audited") == []
    books.get_by_role("link", name="Petty cash").click()
    books.get_by_role("link", name="Approval policy and caps").click()
    books.get_by_role("table", name="Tiers: who approves, by origin and amount").wait_for()
    assert reading.check("policy") == []


def _give_password(dbs: dict[str, Database], settings: Any, user_id: str) -> str:
    import secrets

    from services.gateway.passwords import Passwords

    password = "-".join(secrets.token_urlsafe(5) for _ in range(4))
    hashed = Passwords.from_settings(settings.identity).hash(password)
    with dbs["gateway"].engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET password_hash = %s WHERE id = %s", (hashed, user_id))
    return password
