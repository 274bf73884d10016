"""Payment runs over HTTP on the running stack: a run of mixed outcomes, above the maker-checker
total, each payment paid exactly once though the payment worker is SIGKILLed mid-run; the
failed one goes into a later run; the ready list filters and refuses bad input. The run's
payments are disbursed in batches, and their events reach the other services in bundles."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shared.config import Settings
from shared.db.engine import Database
from tests.payment_support import CASH, bank, events, new_person, reserved_requisition, treasurer
from tests.support import WORKER_READY, Api, Stack, scalar, start_worker, wait_for

RUN = "/api/v1/payment-runs"


def _run(api: Api, token: str, run_id: str) -> dict[str, Any]:
    answer = api.get(f"{RUN}/{run_id}", token)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


_ABOUT = "envelope->'payload'->>'requisition_id' = ANY(:r)"


def _column(db: Database, sql: str, values: list[str]) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(text(sql), {"r": values}).scalars())


def _outcomes(run: dict[str, Any]) -> dict[str, str]:
    return {item["requisition_id"]: item["outcome"] for item in run["items"]}


def _swap_payment_worker(stack: Stack, env: dict[str, str], suffix: str) -> Any:
    """Stop the stack's payment worker and start another in its place (``env``: its settings)."""
    index = next(i for i, p in enumerate(stack.procs) if p.name == "worker-payment")
    stack.procs[index].stop()
    worker = start_worker("payment", env, stack.log_dir, suffix)
    worker.wait_ready(WORKER_READY)
    worker.name = "worker-payment"  # the name other tests' helpers look the worker up by
    stack.procs[index] = worker
    return worker


def test_a_run_of_mixed_outcomes_pays_each_payment_once_though_the_worker_is_killed_mid_run(
    api: Api, stack: Stack, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database], tmp_path: Path
) -> None:
    maker, maker_app = treasurer(api, dbs)
    checker, checker_app = treasurer(api, dbs)
    payees = [CASH] * 6 + [bank("0123-FAIL-TRANSIENT-2"), bank("FAIL-PERMANENT")]
    rids = [reserved_requisition(api, tokens, settings, dbs, payee)["id"] for payee in payees]
    transient, permanent = rids[6], rids[7]

    made = api.post(RUN, maker.token, json={"requisition_ids": rids, "otp": maker_app.code()})
    assert made.status_code == 201, made.text
    run = made.json()
    # Eight of KES 1,250.00 are above the default KES 5,000.00: one officer's code is not enough.
    assert (run["state"], run["count"], run["total"]["minor_units"]) == ("awaiting_second", 8, 1_000_000)
    assert made.headers["Location"].endswith(f"{RUN}/{run['id']}")
    by_maker = api.post(f"{RUN}/{run['id']}/authorisation", maker.token, json={"otp": maker_app.code()})
    assert (by_maker.status_code, by_maker.json()["type"]) == (403, "maker-checker")
    assert all(
        scalar(dbs["payment"], "SELECT count(*) FROM payments WHERE requisition_id = :r", r=r) == 0 for r in rids
    )

    # A payment worker whose provider takes 0.6 s a call, and whose jobs take the run's payments
    # two at a time (four batch jobs), so the run is under way when it dies.
    env = dict(stack.env, PETTYCASH_PROVIDER_LATENCY_MS="600", PETTYCASH_PAYMENT_BATCH_SIZE="2")
    slow = _swap_payment_worker(stack, env, "-slow")
    try:
        checked = api.post(f"{RUN}/{run['id']}/authorisation", checker.token, json={"otp": checker_app.code()})
        assert checked.status_code == 200, checked.text
        assert (checked.json()["state"], checked.json()["checker_id"]) == ("started", checker.user_id)
        wait_for(lambda: _run(api, maker.token, run["id"])["progress"]["paid"] >= 1, 30, 0.05, "a first payment")
        slow.signal(signal.SIGKILL)
        slow.process.wait()
        midway = _run(api, maker.token, run["id"])
        assert midway["progress"]["processing"] > 0, "the worker died after the run had finished"
    finally:
        _swap_payment_worker(stack, dict(stack.env), f"-after-{uuid.uuid4().hex[:6]}")

    done = wait_for(lambda: (r := _run(api, maker.token, run["id"]))["finished"] and r, 60, 0.1, "the run to finish")
    outcomes = _outcomes(done)
    assert outcomes == {**dict.fromkeys(rids, "paid"), permanent: "failed"}
    assert done["progress"] == {"waiting": 0, "processing": 0, "paid": 7, "failed": 1, "left_out": 0}
    posted = "SELECT count(*) FROM transfers WHERE requisition_id = :r AND kind = 'post'"
    for rid in rids:
        # Exactly once: one completion (none for the failed one) per payment, one posting in the ledger.
        once = 0 if rid == permanent else 1
        assert len(events(dbs["payment"], "PaymentCompleted", rid)) == once, rid
        wait_for(lambda r=rid, n=once: scalar(dbs["ledger"], posted, r=r) == n, 30, what="the ledger's posting")
    # The failed one's hold stays (two executions are left), neither posted nor voided.
    assert scalar(dbs["ledger"], "SELECT count(*) FROM transfers WHERE requisition_id = :r", r=permanent) == 1
    calls = "SELECT calls FROM provider_transfers WHERE idempotency_key = :p"
    payment_of = "SELECT id FROM payments WHERE requisition_id = :r"
    assert scalar(dbs["payment"], calls, p=scalar(dbs["payment"], payment_of, r=transient)) == 3  # 2 transient, 1 paid

    # The run's eight PaymentStarted left in one commit: the requisition service took them as a
    # bundle, in one transaction (its inbox rows share one time), each recorded once.
    started = f"SELECT message_id FROM outbox WHERE event_type = 'PaymentStarted' AND {_ABOUT}"
    ids = [str(m) for m in _column(dbs["payment"], started, rids)]
    assert len(ids) == 8
    taken = _column(dbs["requisition"], "SELECT processed_at FROM inbox WHERE message_id::text = ANY(:r)", ids)
    assert len(taken) == 8
    assert len(set(taken)) == 1, taken

    # The failed payment goes into a later run (its second execution), by one officer's code.
    later = api.post(RUN, maker.token, json={"requisition_ids": [permanent], "otp": maker_app.code()})
    assert later.status_code == 201, later.text
    assert later.json()["state"] == "started"
    again = wait_for(lambda: (r := _run(api, maker.token, later.json()["id"]))["finished"] and r, 30, 0.1, "retry")
    assert again["items"][0]["execution"] == 2
    assert _outcomes(again) == {permanent: "failed"}

    listed = api.get(RUN, tokens["aud"])
    assert listed.status_code == 200, listed.text
    assert {run["id"], later.json()["id"]} <= {r["id"] for r in listed.json()["items"]}


def test_the_ready_list_filters_by_branch_method_and_amount_and_leaves_out_your_own(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    payer, _ = treasurer(api, dbs)
    # Amounts of their own: the list holds the oldest 200 ready, and other tests leave many.
    cash = reserved_requisition(api, tokens, settings, dbs, amount={"minor_units": 111_111, "currency": "KES"})["id"]
    by_bank = reserved_requisition(
        api, tokens, settings, dbs, bank("0123-4567"), amount={"minor_units": 111_112, "currency": "KES"}
    )["id"]
    ours = {"min_amount": 111_111, "max_amount": 111_112}

    def listed(**query: Any) -> set[str]:
        answer = api.get(f"{RUN}/candidates", payer.token, params={**ours, **query})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["count"] == len(body["items"])
        assert sum(t["minor_units"] for t in body["totals"]) == sum(i["amount"]["minor_units"] for i in body["items"])
        return {item["id"] for item in body["items"]}

    # Listed once the gateway's projection has them reserved (the payment service knew first).
    wait_for(lambda: {cash, by_bank} <= listed(branch="NBO-CBD"), 15, 0.1, "both listed as ready")
    assert by_bank in listed(method="bank")
    assert cash not in listed(method="bank")
    assert cash not in listed(min_amount=111_112)
    assert by_bank not in listed(max_amount=111_111)
    assert not {cash, by_bank} & listed(branch="MSA-01")


def test_bad_requests_to_payment_runs_are_clear_4xx(api: Api, tokens: dict[str, str], dbs: dict[str, Database]) -> None:
    payer, device = treasurer(api, dbs)
    staff = new_person(dbs, roles=("staff",), branches=("NBO-CBD",))
    cases = [
        (api.get(f"{RUN}/candidates", payer.token, params={"method": "cheque"}), 400),
        (api.get(f"{RUN}/candidates", payer.token, params={"min_amount": "12.50"}), 400),
        (api.get(f"{RUN}/candidates", payer.token, params={"branch": "NOWHERE"}), 422),
        (api.get(f"{RUN}/candidates", staff.token), 403),
        (api.post(RUN, payer.token, json={"requisition_ids": [], "otp": "123456"}), 400),
        (api.post(RUN, payer.token, json={"requisition_ids": ["not-a-uuid"], "otp": "123456"}), 400),
        (api.post(RUN, payer.token, json={"requisition_ids": [str(uuid.uuid4())] * 201, "otp": "123456"}), 400),
        (api.post(RUN, payer.token, json={"requisition_ids": [str(uuid.uuid4())], "otp": "12345"}), 400),
        (api.post(RUN, tokens["aud"], json={"requisition_ids": [str(uuid.uuid4())], "otp": "123456"}), 403),
        (api.post(RUN, payer.token, json={"requisition_ids": [str(uuid.uuid4())], "otp": device.code()}), 422),
        (api.get(f"{RUN}/{uuid.uuid4()}", payer.token), 404),
        (api.post(f"{RUN}/{uuid.uuid4()}/authorisation", payer.token, json={"otp": device.code()}), 404),
        (api.post(f"{RUN}/{uuid.uuid4()}/cancellation", payer.token, json={}), 404),
        (api.get(RUN, staff.token), 403),
    ]
    for answer, status in cases:
        assert answer.status_code == status, (answer.request.method, answer.request.url, answer.text)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.json()["type"]
