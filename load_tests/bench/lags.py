"""End-to-end lags from the services' own database timestamps (one clock: this machine's).

- approval case opened: ``approval_cases.opened_at`` after the client received the 201 of
  the requisition (and after ``requisitions.created_at``);
- submission → posting: ``requisitions.created_at`` to the ledger's ``post`` transfer's
  ``created_at`` (whole chains), and the payment's 201 to that posting (payments);
- projection lag: from a service writing an event (its outbox row, in the transaction that
  commits the change) to the gateway's projector taking it (its inbox row, in the transaction
  that projects it). Not available while the gateway has no projector.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from pettycash.history.plan import conninfo
from services.ledger.domain import transfer_id
from shared.config import DATABASES, SERVICES, Settings


def percentiles(values: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p95, p99, max of a sample (nearest rank), in the sample's unit."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 1)

    return {
        "count": len(ordered),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1], 1),
    }


def _ms(later: datetime | float, earlier: datetime | float) -> float:
    to_seconds = [v.timestamp() if isinstance(v, datetime) else v for v in (later, earlier)]
    return (to_seconds[0] - to_seconds[1]) * 1000


def _lookup(settings: Settings, service: str, sql: str, keys: Iterable[Any]) -> dict[Any, Any]:
    keys = list(keys)
    if not keys:
        return {}
    with psycopg.connect(conninfo(settings.database_url(service))) as conn:
        return dict(conn.execute(sql, (keys,)).fetchall())


def case_opened(settings: Settings, created: list[tuple[str, float]]) -> dict[str, Any]:
    """Approval case opened after the 201 and after the requisition's ``created_at``, in ms."""
    ids = [uuid.UUID(rid) for rid, _ in created]
    opened = _lookup(
        settings, "approval", "SELECT requisition_id, opened_at FROM approval_cases WHERE requisition_id = ANY(%s)", ids
    )
    created_at = _lookup(settings, "requisition", "SELECT id, created_at FROM requisitions WHERE id = ANY(%s)", ids)
    after_201 = [_ms(opened[rid], t) for rid, (_, t) in zip(ids, created, strict=True) if rid in opened]
    after_created = [_ms(opened[rid], created_at[rid]) for rid in ids if rid in opened and rid in created_at]
    return {
        "case_opened_after_201_ms": percentiles(after_201),
        "case_opened_after_created_at_ms": percentiles(after_created),
        "cases_missing": len(ids) - len(after_201),
    }


def posted(settings: Settings, paid: list[tuple[str, float, float]]) -> dict[str, Any]:
    """The ledger's posting after the payment was sent and after its 201, in ms."""
    posts = _lookup(
        settings,
        "ledger",
        "SELECT requisition_id, created_at FROM transfers WHERE id = ANY(%s)",
        [transfer_id("post", uuid.UUID(rid)) for rid, _, _ in paid],
    )
    after_sent, after_201 = [], []
    for rid, sent, answered in paid:
        at = posts.get(uuid.UUID(rid))
        if at is not None:
            after_sent.append(_ms(at, sent))
            after_201.append(_ms(at, answered))
    return {
        "otp_sent_to_posted_ms": percentiles(after_sent),
        "payment_201_to_posted_ms": percentiles(after_201),
        "not_posted": len(paid) - len(after_sent),
    }


def chains(settings: Settings, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Whole chains: submission → posting from database timestamps; the client's view beside it."""
    done = [r for r in records if "failed" not in r]
    ids = [uuid.UUID(r["id"]) for r in done]
    created_at = _lookup(settings, "requisition", "SELECT id, created_at FROM requisitions WHERE id = ANY(%s)", ids)
    posts = _lookup(
        settings,
        "ledger",
        "SELECT requisition_id, created_at FROM transfers WHERE id = ANY(%s)",
        [transfer_id("post", rid) for rid in ids],
    )
    opened = _lookup(
        settings, "approval", "SELECT requisition_id, opened_at FROM approval_cases WHERE requisition_id = ANY(%s)", ids
    )
    submission_to_posting = [_ms(posts[i], created_at[i]) for i in ids if i in posts and i in created_at]
    case_after_created = [_ms(opened[i], created_at[i]) for i in ids if i in opened and i in created_at]
    failures: dict[str, int] = {}
    for r in records:
        if "failed" in r:
            failures[r["failed"]] = failures.get(r["failed"], 0) + 1
    return {
        "chains": len(records),
        "completed": len(done),
        "failed_at": failures,
        "submission_to_posting_ms": percentiles(submission_to_posting),
        "case_opened_after_created_at_ms": percentiles(case_after_created),
        "client_create_to_posted_seen_ms": percentiles([_ms(r["posted"], r["t0"]) for r in done]),
        "client_wait_case_open_ms": percentiles([_ms(r["case_open"], r["created"]) for r in done]),
        "client_wait_payable_ms": percentiles([_ms(r["payable"], r["approved"]) for r in done]),
        "client_wait_posted_ms": percentiles([_ms(r["posted"], r["paid"]) for r in done]),
    }


def projection(settings: Settings, since: datetime, until: datetime) -> dict[str, Any]:
    """Event written by a service → taken by the gateway's projector, for the events of a window."""
    if "gateway" not in DATABASES:
        return {"available": False, "why": "no gateway database"}
    with psycopg.connect(conninfo(settings.database_url("gateway"))) as conn:
        has_inbox = conn.execute("SELECT to_regclass('inbox') IS NOT NULL").fetchone()
        if not has_inbox or not has_inbox[0]:
            return {"available": False, "why": "the gateway database has no inbox (no projector consumes events)"}
        taken = dict(
            conn.execute(
                "SELECT message_id, processed_at FROM inbox WHERE processed_at >= %s AND processed_at <= %s",
                (since, until),
            ).fetchall()
        )
    if not taken:
        return {
            "available": False,
            "why": "the gateway's projector handled no event in this stage (is there a `worker gateway` role?)",
        }
    lags: list[float] = []
    per_service: dict[str, list[float]] = {}
    for service in SERVICES:
        written = _lookup(
            settings, service, "SELECT message_id, created_at FROM outbox WHERE message_id = ANY(%s)", list(taken)
        )
        values = [_ms(taken[m], at) for m, at in written.items()]
        per_service[service] = values
        lags += values
    return {
        "available": bool(lags),
        "events": len(lags),
        "lag_ms": percentiles(lags),
        "per_service_ms": {s: percentiles(v) for s, v in per_service.items() if v},
        **({} if lags else {"why": "no event taken by the projector was found in a service's outbox"}),
    }


def now() -> datetime:
    return datetime.now(UTC)
