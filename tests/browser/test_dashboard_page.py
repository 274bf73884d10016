"""The dashboard page for a treasurer: totals, floats against their levels, the two charts
(each with its figures), latest payments; one branch's on its own; axe-clean."""

from __future__ import annotations

from typing import Any

from shared.db.engine import Database
from tests.browser.test_replenishment_pages import _signed_in_with_code
from tests.payment_support import ensure_float
from tests.support import Api


def test_a_treasurer_reads_the_dashboard_and_one_branchs(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    ensure_float(api, tokens)
    tab = _signed_in_with_code(visit, api, dbs, settings, "treasury")
    page = tab.page
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Dashboard", exact=True).wait_for()
    assert page.get_by_role("img", name="Total KES balance at the end of each day", exact=False).count() == 1
    assert page.get_by_role("table", name="Each branch's float against its levels").count() == 1
    assert tab.check("dashboard") == []
    page.get_by_role("link", name="NBO-CBD").click()
    page.get_by_role("heading", name="Dashboard: NBO-CBD").wait_for()
    assert page.get_by_role("row").filter(has_text="NBO-CBD").count() >= 1
    assert tab.check("dashboard-branch") == []
