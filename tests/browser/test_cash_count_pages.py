"""Cash counts in the browser: a treasurer counts a branch's till (short), a finance officer
approves the variance, and the ledger's float balance drops by the shortage. (Treasury counts
here rather than a new branch manager: other tests rely on Westlands having none.)"""

from __future__ import annotations

from typing import Any

from shared.db.engine import Database
from tests.browser.test_replenishment_pages import HOSTILE, _signed_in_with_code
from tests.payment_support import ensure_float
from tests.support import Api, float_of, wait_for


def test_a_short_count_is_approved_by_finance_and_posted(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    ensure_float(api, tokens, "NBO-WST")
    book = float_of(api, tokens["aud"], "NBO-WST")["balance"]  # minor units (cents)
    tab = _signed_in_with_code(visit, api, dbs, settings, "treasury")
    page = tab.page
    page.get_by_role("link", name="Cash counts").click()
    page.get_by_role("heading", name="Cash counts", exact=True).wait_for()
    assert tab.check("cash-counts-custodian") == []
    # The float holds far more than a till; count all of it but 150 shillings.
    thousands, rest = divmod(book // 100 - 150, 1000)
    assert book % 100 == 0
    page.get_by_label("Float").select_option("NBO-WST KES")
    page.get_by_label("1000", exact=True).fill(str(thousands))
    page.get_by_label("50", exact=True).fill(str(rest // 50))
    page.get_by_label("Comment").fill(f"Month end {HOSTILE}")
    with page.expect_navigation():
        page.get_by_role("button", name="Record the count").click()
    item = page.locator("li", has_text="short Ksh150.00")
    wait_for(lambda: item.count() == 1 or page.reload() is None, 15, 0.3, "the variance listed")
    assert page.locator("img[src=x]").count() == 0
    assert page.get_by_role("button", name="Approve and post").count() == 0  # not theirs to decide

    deciding = _signed_in_with_code(visit, api, dbs, settings, "finance")
    desk = deciding.page
    desk.get_by_role("link", name="Cash counts").click()
    pending = desk.locator("li", has_text="short Ksh150.00")
    wait_for(lambda: pending.count() == 1 or desk.reload() is None, 15, 0.3, "the variance for finance")
    assert deciding.check("cash-counts-finance") == []
    with desk.expect_navigation():
        pending.get_by_role("button", name="Approve and post").click()
    posted = book - 15_000  # 150.00 short
    wait_for(lambda: float_of(api, tokens["aud"], "NBO-WST")["balance"] == posted, 15, what="the shortage posted")
    assert desk.get_by_role("row").filter(has_text="Approved").count() >= 1
