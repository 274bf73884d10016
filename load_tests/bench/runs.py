"""The payment-run stage: runs of ``run_size`` seeded reserved requisitions, one after the other
(after one run not counted, the stage's warm-up).

Each run is made by one treasury user with a code and, above the maker-checker total,
authorised by another with theirs; the authorisation that starts it is timed at the client
(the aim: under 50 ms for 100 payments). Then the payment service's own timestamps say when
the last of its payments was paid (the aim: within 5 s of the authorisation's answer), and
the ledger's when the last was posted.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import gevent
import psycopg
import requests

from load_tests.bench import lags
from load_tests.bench.cpu import CpuSampler
from load_tests.bench.stages import Bench, StageResult, drain
from pettycash.history.plan import conninfo
from services.ledger.domain import transfer_id
from services.payment.domain import payment_id_for

RUN_WAIT_SECONDS = 60.0


def _post(
    client: requests.Session, base: str, path: str, token: str, body: dict[str, Any]
) -> tuple[float, requests.Response]:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    started = time.perf_counter()
    answer = client.post(f"{base}{path}", json=body, headers=headers, timeout=30)
    return 1000 * (time.perf_counter() - started), answer


def _last(conn: psycopg.Connection[Any], sql: str, ids: list[uuid.UUID]) -> tuple[int, datetime | None]:
    count, last = conn.execute(sql, (ids,)).fetchone() or (0, None)
    return int(count), last


def _paid_and_posted(bench: Bench, rids: list[uuid.UUID], since: float) -> dict[str, Any]:
    """Wait until every payment of the run is paid (or failed, or the wait ends); when the last
    was paid and posted, in seconds after ``since``."""
    settings = bench.stack.settings
    payments = [payment_id_for(r) for r in rids]
    posts = [transfer_id("post", r) for r in rids]
    paid_sql = "SELECT count(*), max(completed_at) FROM payments WHERE id = ANY(%s) AND state = 'completed'"
    posted_sql = "SELECT count(*), max(created_at) FROM transfers WHERE id = ANY(%s)"
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    with (
        psycopg.connect(conninfo(settings.database_url("payment")), autocommit=True) as pay,
        psycopg.connect(conninfo(settings.database_url("ledger")), autocommit=True) as ledger,
    ):
        while True:
            paid, last_paid = _last(pay, paid_sql, payments)
            posted, last_posted = _last(ledger, posted_sql, posts)
            if (paid == len(rids) and posted == len(rids)) or time.monotonic() > deadline:
                break
            gevent.sleep(0.05)
    return {
        "paid": paid,
        "posted": posted,
        "paid_s": round(last_paid.timestamp() - since, 3) if last_paid and paid == len(rids) else None,
        "posted_s": round(last_posted.timestamp() - since, 3) if last_posted and posted == len(rids) else None,
    }


def _one_run(bench: Bench, client: requests.Session, size: int) -> dict[str, Any]:
    world = bench.world
    base = bench.stack.base_url
    rids = [uuid.UUID(world.payable.popleft()) for _ in range(min(size, len(world.payable)))]
    maker_token, maker_code = world.otp.take()
    body = {"requisition_ids": [str(r) for r in rids], "otp": maker_code}
    made_ms, made = _post(client, base, "/api/v1/payment-runs", maker_token, body)
    if made.status_code != 201:
        return {"error": f"make: {made.status_code} {made.text[:200]}"}
    run = made.json()
    authorised_ms, started_at = made_ms, time.time()
    if run["state"] == "awaiting_second":
        checker_token, checker_code = world.otp.take()
        while checker_token == maker_token:
            checker_token, checker_code = world.otp.take()
        path = f"/api/v1/payment-runs/{run['id']}/authorisation"
        authorised_ms, checked = _post(client, base, path, checker_token, {"otp": checker_code})
        started_at = time.time()
        if checked.status_code != 200:
            return {"error": f"authorise: {checked.status_code} {checked.text[:200]}"}
        run = checked.json()
    outcome = _paid_and_posted(bench, rids, started_at)
    return {
        "items": len(rids),
        "included": run["count"],
        "maker_checker": run["needs_second_officer"],
        "make_ms": round(made_ms, 1),
        "authorise_ms": round(authorised_ms, 1),
        **outcome,
    }


AUTHORISE = "POST /api/v1/payment-runs/{id}/authorisation (starts the run)"


def _total(name: str, values: list[float], failures: int, seconds: float) -> dict[str, Any]:
    """The authorisations' figures in the shape the report's endpoint tables take."""
    p = lags.percentiles(values)
    return {
        "name": name,
        "requests": len(values) + failures,
        "failures": failures,
        "failure_ratio": failures / max(1, len(values) + failures),
        "p50_ms": p.get("p50"),
        "p95_ms": p.get("p95"),
        "p99_ms": p.get("p99"),
        "max_ms": p.get("max"),
        "rps": round(len(values) / seconds, 2) if seconds else 0,
    }


def payment_runs(bench: Bench) -> StageResult:
    """``runs`` payment runs of ``run_size`` payments each, one after the other (drained between)."""
    cfg = bench.config
    stack = bench.stack
    # Connections kept alive, as the proxy in front of the gateway keeps them (and locust's users do).
    client = requests.Session()
    # One run first, not counted, as every other stage warms up: the first run of a process
    # meets its statement caches and code paths cold, which a long-lived deployment does once.
    warm_up = _one_run(bench, client, cfg.run_size) if len(bench.world.payable) > cfg.runs * cfg.run_size else None
    drain(bench)
    sampler = CpuSampler.for_stack(stack.processes(), stack.options.db_prefix, stack.companions)
    sampler.start()
    started = time.monotonic()
    results = []
    drained: float | None = 0.0  # seconds the last run took to drain
    for _ in range(cfg.runs):
        if len(bench.world.payable) < cfg.run_size:
            break
        results.append(_one_run(bench, client, cfg.run_size))
        drained = drain(bench)
    seconds = round(time.monotonic() - started, 2)
    cpu = sampler.stop()
    client.close()
    done = [r for r in results if "error" not in r]
    total = _total(AUTHORISE, [r["authorise_ms"] for r in done], len(results) - len(done), seconds)
    errors = [
        {"method": "POST", "name": AUTHORISE, "occurrences": 1, "error": r["error"]} for r in results if "error" in r
    ]
    offered = f"{len(results)} runs of {cfg.run_size} payments, one after the other"
    if warm_up is not None:
        offered += f", after one not counted ({warm_up.get('authorise_ms', warm_up.get('error'))} ms)"
    result = StageResult("runs", f"Payment runs of {cfg.run_size}", offered, 1, seconds, [total], total, errors, cpu)
    result.drain_seconds = drained
    result.lags["runs"] = {f"run {n + 1}": r for n, r in enumerate(results)}
    result.lags["authorised_to_all_paid_ms"] = lags.percentiles([1000 * r["paid_s"] for r in done if r["paid_s"]])
    result.lags["authorised_to_all_posted_ms"] = lags.percentiles([1000 * r["posted_s"] for r in done if r["posted_s"]])
    if len(results) < cfg.runs:
        result.notes.append(f"the seeded reserved requisitions ran out after {len(results)} runs")
    for n, r in enumerate(results):
        result.notes.append(f"run {n + 1}: {r}")
    return result
