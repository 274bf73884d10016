"""A command the services have not finished when its page answers (202): the page says so,
loses nothing, and moves on by itself when the command completes. The requisition service's
worker is stopped to make the command wait, then started again."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import PHONE
from tests.browser.test_sign_in_pages import sign_in
from tests.support import Stack, start_worker


def test_a_requisition_sent_while_its_service_is_down_is_followed_to_its_page(
    visit: Any, person_factory: Any, stack: Stack
) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit(viewport=PHONE)
    page = sign_in(tab, person)
    worker = next(p for p in stack.procs if p.name == "worker-requisition")
    worker.stop()
    try:
        tab.open("/requisitions/new")
        page.get_by_label("Amount").fill("640")
        page.get_by_label("Category").select_option("office_supplies")
        page.get_by_label("Purpose").fill("Printer toner while the service is down")
        page.get_by_label("Name").fill("Toner House")
        page.get_by_label("Paid by").select_option("cash")
        with page.expect_navigation():
            page.get_by_role("button", name="Submit").click()
        page.get_by_role("heading", name="Still working on it").wait_for()
        assert "/commands/" in page.url
        assert page.get_by_role("status").count() == 1
        assert tab.check("still-working") == []
        page.wait_for_timeout(2500)  # it keeps asking (htmx, every second) and stays put
        assert "/commands/" in page.url
    finally:
        restarted = start_worker("requisition", stack.env, stack.log_dir, suffix="-restarted")
        stack.procs[stack.procs.index(worker)] = restarted
        restarted.wait_ready("ready.")
    # The queued command runs now; the page notices by itself and shows the requisition.
    page.wait_for_url("**/requisitions/*", timeout=20_000)
    page.get_by_role("heading", name="Printer toner while the service is down").wait_for()
    assert tab.check("followed-to-requisition") == []
