"""A command slower than the gateway's wait answers 202, and its status URL then tells its outcome."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.gateway_path.rig import Rig
from tests.support import Api, requisition_body, wait_for

PATH = "/api/v1/requisitions"


def test_a_202_status_url_says_pending_then_done(rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]) -> None:
    # The task sleeps 1 s before committing; the gateway waits 0.2 s: a real 202.
    api = gateway(PETTYCASH_COMMAND_WAIT_SECONDS="0.2")
    body = requisition_body()

    accepted = api.post(PATH, tokens["alice"], json=body)

    assert accepted.status_code == 202, accepted.text
    status_url = accepted.json()["status_url"]
    assert accepted.headers["Location"] == status_url
    # Read at once it is (almost always) still pending; either way never a 500.
    early = api.get(status_url, tokens["alice"])
    assert early.status_code in (200, 202), early.text
    assert early.json()["state"] in ("pending", "done")

    done = wait_for(
        lambda: (r := api.get(status_url, tokens["alice"])).status_code == 200 and r, 20, 0.1, "the command to finish"
    )

    outcome = done.json()
    assert outcome["state"] == "done"
    assert outcome["status"] == 201
    assert outcome["body"]["purpose"] == body["purpose"]
    assert rig.requisitions_with(body["purpose"]) == 1
    # Only the sender may read it.
    assert api.get(status_url, tokens["sam"]).status_code == 404
