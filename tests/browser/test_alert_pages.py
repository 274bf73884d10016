"""Alerts at work: wrong one-time codes raise an alert (the payment service owns that fact),
it is mailed to the admins, and a treasurer acknowledges and resolves it on the alerts page."""

from __future__ import annotations

import email
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import update

from services.gateway.models import User
from shared.db.engine import Database
from tests.browser.test_replenishment_pages import HOSTILE, _signed_in_with_code
from tests.payment_support import enrol, new_person, reserved_requisition
from tests.support import Api, wait_for


def _mail_to(outbox: Path, address: str) -> list[email.message.Message]:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] == address:
            found.append(message)
    return found


def test_wrong_codes_raise_an_alert_that_is_mailed_acknowledged_and_resolved(
    visit: Any, api: Api, tokens: dict[str, str], dbs: dict[str, Database], settings: Any, tmp_var: Path
) -> None:
    watcher = new_person(dbs, ("admin",))  # admins act on repeated wrong codes: they get the mail
    address = f"{watcher.username}@example.org"
    with dbs["gateway"].engine.begin() as conn:
        conn.execute(update(User).where(User.id == uuid.UUID(watcher.user_id)).values(email=address))

    guesser = new_person(dbs)
    device = enrol(api, guesser)
    rid = reserved_requisition(api, tokens, settings, dbs)["id"]
    for _ in range(3):  # the code is checked last, once the requisition is payable
        answer = api.post(f"/api/v1/requisitions/{rid}/payment", guesser.token, json={"otp": device.wrong_code()})
        assert answer.status_code == 422, answer.text

    mails = wait_for(lambda: _mail_to(tmp_var / "mail", address), 20, 0.3, "the alert's mail")
    assert "otp failures" in mails[0]["Subject"]
    assert guesser.username in mails[0].get_payload()

    desk = _signed_in_with_code(visit, api, dbs, settings, "treasury")
    page = desk.page
    page.get_by_role("link", name="Alerts").click()
    item = page.locator("li", has_text=f"{guesser.username} entered 3 wrong one-time codes")
    wait_for(lambda: item.count() == 1 or page.reload() is None, 15, 0.3, "the alert listed")
    assert desk.check("alerts") == []
    with page.expect_navigation():
        item.get_by_role("button", name="Acknowledge").click()
    wait_for(lambda: "Acknowledged" in item.inner_text() or page.reload() is None, 15, 0.3, "the acknowledgement")
    item.get_by_label("What was done about alert", exact=False).fill(f"Spoke to them {HOSTILE}")
    with page.expect_navigation():
        item.get_by_role("button", name="Resolve").click()
    wait_for(lambda: item.count() == 0 or page.reload() is None, 15, 0.3, "the alert off the unresolved list")
    page.get_by_label("Status").select_option("resolved")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    done = page.locator("li", has_text=f"{guesser.username} entered 3 wrong one-time codes")
    assert f"Spoke to them {HOSTILE}" in done.inner_text()
    assert page.locator("img[src=x]").count() == 0
    assert desk.check("alerts-resolved") == []
