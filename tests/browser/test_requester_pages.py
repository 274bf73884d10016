"""A member of staff on a phone: asks for money, follows it, cancels it; hostile text stays
text; another branch's requisition is not found."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import PHONE
from tests.browser.test_sign_in_pages import sign_in
from tests.support import Api, requisition_body, wait_for

HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'


def test_staff_ask_for_money_follow_it_and_cancel_it_on_a_phone(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit(viewport=PHONE)
    page = sign_in(tab, person)
    page.get_by_role("link", name="New requisition").click()
    page.get_by_role("heading", name="New requisition").wait_for()
    assert tab.check("new-requisition") == []
    page.get_by_label("Amount").fill("1,250.50")
    page.get_by_label("Category").select_option("fuel")
    page.get_by_label("Purpose").fill(f"Generator diesel {HOSTILE}")
    page.get_by_label("Name").fill(f"Shell {HOSTILE}")
    page.get_by_label("Paid by").select_option("cash")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    page.get_by_role("heading", name=f"Generator diesel {HOSTILE}").wait_for()  # the text, shown as text
    assert "Ksh" in page.inner_text("dl")
    assert "1,250.50" in page.inner_text("dl")
    assert page.locator("img[src=x]").count() == 0
    # The approval service routes it in a moment: the page shows it on a reload.
    wait_for(lambda: "Waiting for approval" in page.reload().text(), 15, 0.3, "routing")
    assert "Submitted" in page.inner_text(".timeline")
    assert tab.check("requisition") == []

    page.get_by_role("link", name="All my requisitions").click()
    page.get_by_role("heading", name="My requisitions").wait_for()
    assert page.get_by_role("link", name=f"Generator diesel {HOSTILE}").count() == 1
    assert tab.check("my-requisitions") == []
    page.get_by_role("link", name=f"Generator diesel {HOSTILE}").click()
    page.get_by_label("Why cancel (optional)").fill("Bought it myself")
    with page.expect_navigation():
        page.get_by_role("button", name="Cancel this requisition").click()
    wait_for(lambda: "Cancelled" in page.reload().text(), 15, 0.3, "the cancellation")
    assert "Bought it myself" in page.inner_text(".timeline")


def test_a_wrong_amount_is_said_beside_its_field(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    page = sign_in(tab, person)
    tab.open("/requisitions/new")
    page.get_by_label("Amount").fill("12.345")
    page.get_by_label("Purpose").fill("Stamps")
    page.get_by_label("Name").fill("Post office")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    page.locator("#amount-error").wait_for()
    assert "at most 2 decimals" in page.inner_text("#amount-error")
    assert page.get_by_label("Purpose").input_value() == "Stamps"  # nothing typed is lost
    assert tab.check("amount-error") == []


def test_another_branchs_requisition_is_not_found(
    visit: Any, person_factory: Any, api: Api, tokens: dict[str, str]
) -> None:
    elsewhere = api.post("/api/v1/requisitions", tokens["sam"], json=requisition_body(branch="MSA-01"))
    assert elsewhere.status_code == 201, elsewhere.text
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    sign_in(tab, person)
    with tab.page.expect_response(lambda r: "/requisitions/" in r.url) as answer:
        tab.open(f"/requisitions/{elsewhere.json()['id']}")
    assert answer.value.status == 404
    assert "no such requisition" in tab.page.inner_text("main")


def test_a_draft_with_a_photo_of_its_receipt_is_changed_sent_back_and_resubmitted(
    visit: Any, person_factory: Any
) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    manager = person_factory(["branch_manager"], ["NBO-CBD"])
    tab = visit(viewport=PHONE)
    page = sign_in(tab, person)
    tab.open("/requisitions/new")
    page.get_by_label("Amount").fill("800")
    page.get_by_label("Purpose").fill(f"Stamps {person.username}")
    page.get_by_label("Name").fill("Posta")
    page.get_by_role("button", name="Save as draft").click()
    page.get_by_role("heading", name=f"Stamps {person.username}").wait_for()
    assert "Draft" in page.inner_text("dl")
    photo = page.screenshot()  # a real PNG, as a phone's camera would give one
    page.get_by_label("Add a receipt: a photo or a PDF (at most 5 MB)").set_input_files(
        {"name": "receipt.png", "mimeType": "image/png", "buffer": photo}
    )
    page.get_by_role("button", name="Attach").click()
    page.get_by_role("img", name="Receipt receipt.png").wait_for()
    assert page.get_by_role("img", name="Receipt receipt.png").evaluate("i => i.naturalWidth") > 0  # it loads
    assert tab.check("draft-with-receipt") == []
    page.get_by_role("link", name="Change it").click()
    page.get_by_label("Amount").fill("950")
    assert tab.check("change") == []
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    wait_for(lambda: "Waiting for approval" in page.reload().text(), 20, 0.3, "routing")
    assert "Ksh950.00" in page.inner_text("dl")
    url = page.url

    approving = visit()
    desk = sign_in(approving, manager)
    approving.open(url.removeprefix(approving.base_url))
    desk.get_by_label("Comment (a reason is needed to reject or send back)").fill("Split the postage from the rest")
    with desk.expect_navigation():
        desk.get_by_role("button", name="Request changes").click()
    wait_for(lambda: "Changes requested" in desk.reload().text(), 20, 0.3, "the request for changes")

    wait_for(lambda: "Changes requested" in page.reload().text(), 20, 0.3, "the requester's view")
    assert "Split the postage from the rest" in page.inner_text(".timeline")
    assert "Changes are due by" in page.inner_text("main")
    page.get_by_role("link", name="Change it").click()
    page.get_by_label("Purpose").fill(f"Stamps only {person.username}")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    wait_for(lambda: "Waiting for approval" in page.reload().text(), 20, 0.3, "the resubmission")
    page.get_by_role("heading", name=f"Stamps only {person.username}").wait_for()


def test_hostile_text_in_every_field_of_the_round_stays_text(visit: Any, person_factory: Any) -> None:
    """Every text field a requester and an approver type into, with markup in it: shown back as
    text wherever it appears (the form again, the requisition, its timeline), never run."""
    requester = person_factory(["staff"], ["NBO-CBD"])
    manager = person_factory(["branch_manager"], ["NBO-CBD"])
    tab = visit()
    page = sign_in(tab, requester)
    tab.open("/requisitions/new")
    page.get_by_label("Amount").fill(HOSTILE)  # refused, and said back as text
    page.get_by_label("Purpose").fill(f"Purpose {HOSTILE}")
    page.get_by_label("Name").fill(f"Payee {HOSTILE}")
    page.get_by_label("Paid by").select_option("mobile_money")
    page.get_by_label("Phone or account number (mobile money and bank)").fill(f"07{HOSTILE}")
    page.get_by_role("checkbox", name="Urgent").check()
    page.get_by_label("Why it is urgent").fill(f"Urgent {HOSTILE}")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    page.locator("#amount-error").wait_for()
    assert page.get_by_label("Purpose").input_value() == f"Purpose {HOSTILE}"
    assert page.locator("img[src=x]").count() == 0
    assert tab.check("hostile-refused") == []
    page.get_by_label("Amount").fill("300")
    page.get_by_label("Phone or account number (mobile money and bank)").fill("+254700000002")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    page.get_by_role("heading", name=f"Purpose {HOSTILE}").wait_for()
    text = page.inner_text("main")
    assert f"Payee {HOSTILE}" in text
    assert f"Urgent {HOSTILE}" in text
    assert page.locator("img[src=x]").count() == 0
    url = page.url

    deciding = visit()
    desk = sign_in(deciding, manager)
    desk.goto(url)
    wait_for(
        lambda: desk.get_by_role("button", name="Not urgent").count() == 1 or desk.reload() is None, 20, 0.3, "the case"
    )
    desk.get_by_label("Comment (a reason is needed to reject or send back)").fill(f"Not so {HOSTILE}")
    with desk.expect_navigation():
        desk.get_by_role("button", name="Not urgent").click()
    wait_for(lambda: f"Not so {HOSTILE}" in _reloaded(desk, ".timeline"), 20, 0.3, "the decision")
    assert desk.locator("img[src=x]").count() == 0
    assert deciding.check("hostile-decided") == []

    page.reload()
    page.get_by_label("Why cancel (optional)").fill(f"Cancel {HOSTILE}")
    with page.expect_navigation():
        page.get_by_role("button", name="Cancel this requisition").click()
    wait_for(lambda: f"Cancel {HOSTILE}" in _reloaded(page, ".timeline"), 20, 0.3, "the cancellation")
    assert page.locator("img[src=x]").count() == 0
    assert tab.check("hostile-cancelled") == []


def _reloaded(page: Any, selector: str) -> str:
    page.reload()
    return str(page.inner_text(selector))


def _tab_to(page: Any, selector: str) -> None:
    """Press Tab until the element is focused (a keyboard user's way there)."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_requisition_is_asked_for_and_cancelled_by_keyboard_alone(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    page = sign_in(tab, person)
    _tab_to(page, "a[href$='/requisitions/new']")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="New requisition").wait_for()
    for selector, typed in (
        ("#amount", "75"),
        ("#category", "Postage"),  # a select: typing picks the option
        ("#purpose", "Envelopes, typed without a mouse"),
        ("#payee_name", "Corner Shop"),
        ("#payee_method", "Cash"),
    ):
        _tab_to(page, selector)
        page.keyboard.type(typed)
    assert page.get_by_label("Category").input_value() == "postage"
    _tab_to(page, "button[value=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.get_by_role("heading", name="Envelopes, typed without a mouse").wait_for()
    _tab_to(page, "#comment")
    page.keyboard.type("Not needed after all")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # submits the cancel form
    wait_for(lambda: "Not needed after all" in _reloaded(page, ".timeline"), 20, 0.3, "the cancellation")


def test_the_browser_tells_the_pages_its_time_zone(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    page = sign_in(tab, person)
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies.get("tz", "").replace("%2F", "/") == zone  # set by static/app.js
