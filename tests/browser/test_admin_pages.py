"""The admin's pages in a real Chromium: an admin signs in with the second factor, adds a region
and a branch (a mistake said beside its field first), invites a user with a role and the
branch, changes their roles, deactivates and reactivates them, mails them a password link, and
changes a cap; each page checked with axe-core, the users list on a phone too; a hostile name
stays text; bad input on every form is answered by a page in words, never a 500; and a member
of staff is told, on a page, that the admin pages are not theirs."""

from __future__ import annotations

import uuid
from typing import Any

from shared.db.engine import Database
from tests.browser.conftest import PHONE, Person
from tests.browser.test_money_chain import _give_password
from tests.browser.test_sign_in_pages import sign_in
from tests.payment_support import enrol, new_person
from tests.support import Api

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def _signed_in_admin(visit: Any, api: Api, dbs: dict[str, Database], settings: Any) -> tuple[Any, Any]:
    """A new admin with an authenticator, signed in at a desktop with its code."""
    admin = new_person(dbs, roles=("admin",), branches=("HQ",))
    device = enrol(api, admin)
    password = _give_password(dbs, settings, admin.user_id)
    tab = visit()
    page = sign_in(tab, Person(admin.username, password, admin.user_id))
    page.get_by_label("Code", exact=True).fill(device.code())
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name=f"Welcome, {admin.username}").wait_for()
    return tab, page


def _post(page: Any, button: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def test_an_admin_runs_the_directory_and_the_caps_on_the_pages(
    visit: Any, api: Api, dbs: dict[str, Database], settings: Any
) -> None:
    tab, page = _signed_in_admin(visit, api, dbs, settings)
    region = f"W{uuid.uuid4().hex[:5].upper()}"
    branch = f"{region}-1"

    # Regions and branches.
    page.get_by_role("link", name="Branches and regions").click()
    page.get_by_role("heading", name="Branches and regions", level=1).wait_for()
    assert tab.check("branches") == []
    page.locator("#region-code").fill(region)
    page.locator("#region-name").fill("Web West")
    _post(page, "Add the region")
    page.get_by_role("status").filter(has_text="The region is added.").wait_for()
    page.locator("#branch-code").fill(branch)
    page.locator("#branch-name").fill("Web West One")
    page.locator("#branch-region").select_option(region)
    page.locator("#branch-reorder_level").fill("12.345")
    _post(page, "Add the branch")
    error = page.locator("#branch-reorder_level-error")
    assert "at most 2 decimals" in error.inner_text()
    assert page.locator("#branch-reorder_level").get_attribute("aria-describedby") == "branch-reorder_level-error"
    assert page.locator("#branch-name").input_value() == "Web West One"  # nothing typed is lost
    assert tab.check("branch-error") == []
    page.locator("#branch-reorder_level").fill("1000")
    page.locator("#branch-imprest").fill("5000")
    _post(page, "Add the branch")
    page.get_by_role("status").filter(has_text="The branch is added.").wait_for()
    page.get_by_label(f"Name of region {region}").fill("Web West Coast")
    with page.expect_navigation():
        page.locator("li", has=page.get_by_label(f"Name of region {region}")).get_by_role("button").click()
    page.get_by_role("status").filter(has_text="The region is renamed.").wait_for()
    assert "Web West Coast" in page.get_by_role("table", name="Regions, by code").inner_text()
    page.get_by_role("link", name=branch, exact=True).click()
    page.get_by_role("heading", name=f"Web West One ({branch})").wait_for()
    assert tab.check("branch") == []
    page.locator("#branch-name").fill("Web West Main")
    _post(page, "Save the changes")
    page.get_by_role("heading", name=f"Web West Main ({branch})").wait_for()

    # A user: invited with a role and the branch, given another role, deactivated, reactivated.
    page.get_by_role("link", name="All branches and regions").click()
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("heading", name="Users", level=1).wait_for()
    assert tab.check("users") == []
    username = f"web-new-{uuid.uuid4().hex[:6]}"
    page.locator("#username").fill(username)
    page.get_by_label("Full name").fill(HOSTILE)
    page.get_by_label("E-mail address").fill(f"{username}@example.org")
    page.get_by_role("group", name="Roles").get_by_label("Staff", exact=True).check()
    page.get_by_label(f"Web West Main ({branch})").check()
    _post(page, "Add the user")
    page.get_by_role("heading", name=HOSTILE, level=1).wait_for()  # the name, as text
    assert page.locator("img[src=x]").count() == 0
    assert "The user is made" in page.get_by_role("status").inner_text()
    facts = page.locator("dl.facts")
    assert branch in facts.inner_text()
    assert tab.check("user") == []
    page.get_by_role("group", name="Roles").get_by_label("Branch manager").check()
    _post(page, "Save the changes")
    page.get_by_role("status").filter(has_text="The changes are saved.").wait_for()
    assert "Branch manager, Staff" in facts.inner_text()
    _post(page, "Deactivate")
    page.get_by_role("status").filter(has_text="Deactivated").wait_for()
    assert "Inactive" in facts.inner_text()
    _post(page, "Reactivate")
    page.get_by_role("status").filter(has_text="Reactivated").wait_for()
    assert "Inactive" not in facts.inner_text()
    _post(page, "Send the invitation again")
    page.get_by_role("status").filter(has_text="link").wait_for()

    # The list, on a desktop and on a phone; the hostile name inert there too.
    page.get_by_role("link", name="All users").click()
    page.get_by_label("Find by username, name or e-mail").fill(username)
    _post(page, "Find")
    page.get_by_role("link", name=username).wait_for()
    assert page.locator("img[src=x]").count() == 0
    page.set_viewport_size(PHONE)
    assert tab.check("users-phone") == []

    # A cap on the new branch's month (nobody else asks money of it).
    page.goto(f"{tab.base_url}/policy")
    page.get_by_role("heading", name="Change the caps").wait_for()
    assert tab.check("policy-phone") == []
    page.set_viewport_size({"width": 1280, "height": 900})
    new_cap = page.get_by_role("group", name="A new cap")
    new_cap.get_by_label("What it caps").select_option("branch_monthly")
    new_cap.get_by_label("Branch").select_option(branch)
    new_cap.get_by_label("At most (amount)").fill("250000")
    _post(page, "Save the caps")
    page.get_by_role("status").filter(has_text="The caps are saved").wait_for()
    assert f"Branch {branch}: at most" in page.locator("ul.list").inner_text()
    assert tab.check("policy") == []


def test_a_member_of_staff_is_not_let_into_the_admin_pages(visit: Any, person_factory: Any) -> None:
    person = person_factory(["staff"], ["NBO-CBD"])
    tab = visit()
    page = sign_in(tab, person)
    page.get_by_role("heading", name=f"Welcome, {person.username}").wait_for()
    assert page.get_by_role("link", name="Users").count() == 0
    answer = page.goto(f"{tab.base_url}/admin/users")
    assert answer is not None
    assert answer.status == 403
    page.get_by_role("heading", name="Not allowed").wait_for()
    assert "admin" in page.locator("main").inner_text()
    assert tab.check("forbidden") == []


NUL = "a\x00b"
# (path, form, the status of the page that answers): each a page in words, none a 500.
BAD_FORMS = [
    ("/admin/users", {}, 400),
    (
        "/admin/users",
        {"username": "UP", "full_name": "x" * 500, "email": "no", "roles": "root", "branches": "b c"},
        400,
    ),
    (
        "/admin/users",
        {"username": "ok-name", "full_name": "Ok", "email": "ok@example.org", "roles": "staff", "branches": "NO-SUCH"},
        422,
    ),
    ("/admin/users", {"username": NUL, "full_name": NUL, "email": NUL, "roles": "staff"}, 400),
    ("/admin/users/{user}", {"full_name": "", "email": "x", "roles": "root"}, 400),
    ("/admin/users/{user}/password-link", {}, 409),  # no e-mail address
    ("/admin/users/{user}/second-factor/reset", {}, 404),  # no authenticator
    ("/admin/users/{nobody}/deactivate", {}, 404),
    ("/admin/regions", {"code": "../x", "name": "y" * 300}, 400),
    ("/admin/regions", {"code": "NAI", "name": "Taken"}, 409),
    ("/admin/regions/NO-SUCH", {"name": "Renamed"}, 404),
    (
        "/admin/branches",
        {
            "code": "X1",
            "name": "n",
            "region": "NAI",
            "reorder_level": "sNaN",
            "imprest": "1e999999999",
            "currency": "KES",
        },
        400,
    ),
    (
        "/admin/branches",
        {"code": "X2", "name": "n", "region": "NAI", "reorder_level": "10", "imprest": "1", "currency": "KES"},
        422,
    ),
    ("/admin/branches/NBO-CBD", {"name": "", "reorder_level": "-5", "currency": "KES"}, 400),
    ("/admin/branches/no-such", {"name": "x"}, 404),
    ("/policy/approval", {}, 400),  # no rows at all: never "no tiers"
    (
        "/policy/approval",
        {
            "tier_rows": "99999999999",
            "tier-0-name": "T1",
            "tier-0-origin": "moon",
            "tier-0-up_to": "1e5",
            "tier-0-chain": ",".join(["x"] * 50),
            "limit-cfo": "-1",
            "sla_hours": "0",
            "urgent_sla_hours": "\u00b2",
        },
        400,
    ),
    ("/policy/caps", {}, 400),  # never "no caps"
    (
        "/policy/caps",
        {
            "cap_rows": "2",
            "cap-0-kind": "bogus",
            "cap-0-amount": "0",
            "cap-0-currency": "",
            "cap-1-kind": "category_per_requisition",
            "cap-1-amount": "5",
            "cap-1-currency": "KES",
        },
        400,
    ),
    (
        "/policy/caps",
        {
            "cap_rows": "1",
            "cap-0-kind": "branch_monthly",
            "cap-0-branch": "NO-SUCH",
            "cap-0-amount": "5",
            "cap-0-currency": "KES",
        },
        422,
    ),
]


def test_bad_input_on_the_admin_forms_is_answered_in_words_never_a_500(
    visit: Any, api: Api, dbs: dict[str, Database], settings: Any
) -> None:
    tab, page = _signed_in_admin(visit, api, dbs, settings)
    page.goto(f"{tab.base_url}/admin/users")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    values = {"user": new_person(dbs, roles=("staff",), branches=("NBO-CBD",)).user_id, "nobody": uuid.uuid4()}
    wrong = []
    for path, form, status in BAD_FORMS:
        answer = page.context.request.post(
            tab.base_url + path.format(**values), form={"csrf_token": csrf, **form}, headers={"Accept": "text/html"}
        )
        html = answer.headers.get("content-type", "").startswith("text/html")
        said = 'role="alert"' in answer.text() or ">Continue</a>" in answer.text()  # a refusal, or a message page
        if answer.status != status or not html or not said:
            wrong.append(f"{path} {form}: {answer.status} {answer.headers.get('content-type')}")
    assert not wrong, "\n".join(wrong)
    # The service's own refusal of a policy, in its words, with what was typed kept.
    policy = {
        "tier_rows": "2",
        "limit-branch_manager": "5",
        "limit-cfo-none": "1",
        "sla_hours": "24",
        "urgent_sla_hours": "2",
    }
    for i, origin, chain in ((0, "branch", "branch manager"), (1, "head_office", "cfo")):
        policy.update({f"tier-{i}-origin": origin, f"tier-{i}-name": "T1", f"tier-{i}-chain": chain})
    answer = page.context.request.post(
        f"{tab.base_url}/policy/approval", form={"csrf_token": csrf, **policy}, headers={"Accept": "text/html"}
    )
    assert answer.status == 422, answer.status
    assert "the top tier must need the CFO" in answer.text()
    assert 'value="branch manager"' in answer.text()
