"""The reports page in the browser: an auditor chooses a report and its period, reads its
tables, and downloads it as CSV and PDF on the same session; a branch manager reads their
branch's alone; each page checked with axe-core, the keyboard and CSRF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.db.engine import Database
from tests.browser.conftest import Person
from tests.browser.test_money_chain import _give_password
from tests.browser.test_sign_in_pages import sign_in
from tests.payment_support import ensure_float, new_person, user_id
from tests.support import Api


def _signed_in(visit: Any, dbs: dict[str, Database], settings: Any, role: str, branch: str = "HQ") -> Any:
    person = new_person(dbs, (role,), (branch,))
    tab = visit()
    page = sign_in(tab, Person(person.username, _give_password(dbs, settings, person.user_id), person.user_id))
    page.get_by_role("heading", name="Welcome", exact=False).wait_for()
    return tab


def test_an_auditor_reads_a_report_and_downloads_it(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    ensure_float(api, tokens)
    ensure_float(api, tokens, "NBO-WST")
    tab = _signed_in(visit, dbs, settings, "auditor")
    page = tab.page
    page.get_by_role("link", name="Reports").click()
    page.get_by_role("heading", name="Reports", exact=True).wait_for()
    assert tab.check("reports-spending") == []
    page.get_by_label("Report").select_option("fund-health")
    page.get_by_label("From").fill((datetime.now(UTC).date() - timedelta(days=6)).isoformat())
    with page.expect_navigation():
        page.get_by_role("button", name="Show the report").click()
    page.get_by_role("heading", name="Floats over the period").wait_for()
    floats = page.get_by_role("table").first
    assert floats.get_by_role("row").filter(has_text="NBO-CBD").count() == 1
    assert floats.get_by_role("row").filter(has_text="NBO-WST").count() == 1
    assert tab.check("reports-fund-health") == []
    csv_link = page.get_by_role("link", name="Download CSV").get_attribute("href")
    assert csv_link is not None
    assert "report=" not in csv_link
    assert "format=csv" in csv_link
    answer = page.request.get(tab.base_url + csv_link)  # on the page's session cookie
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text().startswith("branch,currency,opening_balance")
    pdf = page.request.get(tab.base_url + (page.get_by_role("link", name="Download PDF").get_attribute("href") or ""))
    assert pdf.body().startswith(b"%PDF")
    page.get_by_label("From").fill("2026-05-02")
    page.get_by_label("To").fill("2026-05-01")
    with page.expect_navigation():
        page.get_by_role("button", name="Show the report").click()
    assert "ends before it starts" in (page.get_by_role("alert").text_content() or "")


def test_a_branch_manager_reads_their_branchs_report_alone(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any
) -> None:
    # Bob, Nairobi CBD's manager (a new manager elsewhere would change other tests' routing).
    ensure_float(api, tokens)
    ensure_float(api, tokens, "NBO-WST")
    bob = user_id(dbs, "bob")
    tab = visit()
    page = sign_in(tab, Person("bob", _give_password(dbs, settings, bob), bob))
    page.get_by_role("heading", name="Welcome", exact=False).wait_for()
    page = tab.open("/reports?report=trial-balance")
    page.get_by_role("heading", name="Accounts").wait_for()
    accounts = page.get_by_role("table").first
    assert accounts.get_by_role("row").filter(has_text="NBO-CBD").count() >= 1
    assert accounts.get_by_role("row").filter(has_text="NBO-WST").count() == 0
    assert tab.check("reports-trial-balance-manager") == []
