"""The promises a fault run checks once the system is quiet, each against the services' own databases.

Every check reads the databases directly (never the gateway's projections, which are what is
under test elsewhere) and returns its violations with the evidence: ids, rows, the chain's
own notes. The checks, as the issue lists them:

1. every requisition answered 201 or 202 reaches a terminal state (and every requisition
   that exists at all is terminal: the workload is its only author);
2. no requisition exists twice for one idempotency key (each key carries a unique purpose);
3. at most one disbursement per payment at the provider, and money out only for a payment
   the service completed;
4. at most one posting per hold, and a hold is posted if and only if its payment completed;
   a finished requisition leaves no hold open;
5. the ledger balances, posted and pending, and the cached balances equal the transfers
   (``services.ledger.service.verify_balances``);
6. no float is below zero;
7. voucher numbers are gap-free per branch;
8. no message is left undelivered, in a retry loop, or in the dead letters without an alert.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text

from pettycash.chaos.workload import TERMINAL, Chain
from services.ledger.domain import Totals
from shared.config import DATABASES
from shared.db.engine import Database
from shared.messaging.app import recipients

# An outbox message re-sent this often was in a loop, even if it got through in the end.
RESEND_WARNING = 10
EVIDENCE_ROWS = 20


@dataclass
class Violation:
    """One broken promise, with what shows it."""

    invariant: str
    message: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The violation as the JSON summary keeps it."""
        return asdict(self)


def _rows(db: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql), params)]


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a row value (ids, times and decimals as strings)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _evidence(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_plain(r) for r in list(rows)[:EVIDENCE_ROWS]]


# -- 1 and 2: requisitions ---------------------------------------------------------------


def final(status: str, payment: dict[str, Any] | None, max_executions: int) -> bool:
    """Whether nothing more can happen to a requisition (payment_failed: no execution left)."""
    if status in TERMINAL:
        return True
    return status == "payment_failed" and payment is not None and payment["executions"] >= max_executions


def check_requisitions(
    dbs: dict[str, Database], chains: list[Chain], max_executions: int, faults: Iterable[dict[str, Any]] = ()
) -> list[Violation]:
    """Every accepted requisition exists and is final; no key made two requisitions."""
    violations: list[Violation] = []
    requisitions = _rows(
        dbs["requisition"],
        "SELECT id, purpose, status, voucher_no, branch_code, requester_name, updated_at FROM requisitions",
    )
    payments = {
        str(p["requisition_id"]): p
        for p in _rows(dbs["payment"], "SELECT requisition_id, state, executions, last_error FROM payments")
    }
    by_purpose: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for req in requisitions:
        by_purpose[req["purpose"]].append(req)

    twice = [
        {"key": chain.key, "purpose": chain.purpose, "requisitions": [str(r["id"]) for r in by_purpose[chain.purpose]]}
        for chain in chains
        if len(by_purpose.get(chain.purpose, [])) > 1
    ]
    if twice:
        violations.append(Violation("one-requisition-per-key", f"{len(twice)} key(s) made more than one", twice))
    created_twice = _rows(
        dbs["requisition"],
        "SELECT message_id, array_agg(requisition_id::text) AS requisitions FROM requisition_history "
        "WHERE action = 'created' GROUP BY message_id HAVING count(*) > 1",
    )
    if created_twice:
        violations.append(
            Violation(
                "one-requisition-per-key",
                f"{len(created_twice)} command message(s) created more than one requisition",
                _evidence(created_twice),
            )
        )

    never = [
        {
            "chain": c.number,
            "key": c.key,
            "requester": c.requester,
            "first_answer": c.first_answer,
            "answered_202": c.accepted_202,
            "message_id": c.message_id,
            "processed_by_requisition_service": None,
            "started_at": round(c.started_at, 2),
            "answers": dict(c.create_answers),
            "faults_nearby": faults_around(faults, c.started_at),
            "notes": c.notes[-5:],
        }
        for c in chains
        if c.accepted and not by_purpose.get(c.purpose)
    ]
    if never:
        processed = _processed(dbs["requisition"], [n["message_id"] for n in never])
        for item in never:
            item["processed_by_requisition_service"] = item["message_id"] in processed if item["message_id"] else None
        violations.append(
            Violation(
                "accepted-requisitions-exist", f"{len(never)} requisition(s) answered 201/202 never existed", never
            )
        )

    chain_of = {c.purpose: c for c in chains}
    stuck = []
    for req in requisitions:
        payment = payments.get(str(req["id"]))
        if final(req["status"], payment, max_executions):
            continue
        chain = chain_of.get(req["purpose"])
        history = _rows(
            dbs["requisition"],
            "SELECT at, action, from_status, to_status, actor_name FROM requisition_history "
            "WHERE requisition_id = :r ORDER BY id DESC LIMIT 4",
            r=req["id"],
        )
        stuck.append(
            {
                **req,
                "payment": payment,
                "chain": chain.number if chain else None,
                "plan": chain.plan if chain else None,
                "chain_notes": chain.notes[-4:] if chain else [],
                "last_history": history[::-1],
            }
        )
    if stuck:
        violations.append(
            Violation(
                "requisitions-terminal", f"{len(stuck)} requisition(s) never reached a final state", _evidence(stuck)
            )
        )
    return violations


# -- 3: the provider -------------------------------------------------------------------------


def check_disbursements(dbs: dict[str, Database]) -> list[Violation]:
    """At most one payout per payment at the provider; money out only for a completed payment."""
    violations: list[Violation] = []
    db = dbs["payment"]
    twice = _rows(
        db,
        "SELECT idempotency_key, array_agg(provider) AS providers, array_agg(reference) AS references_, "
        "sum(amount_minor) AS paid_minor FROM provider_transfers WHERE paid_at IS NOT NULL "
        "GROUP BY idempotency_key HAVING count(*) > 1",
    )
    if twice:
        violations.append(Violation("one-disbursement-per-payment", "paid more than once", _evidence(twice)))
    payouts_per_requisition = _rows(
        db,
        "SELECT p.requisition_id, count(*) AS payouts FROM provider_transfers t JOIN payments p "
        "ON p.id = t.idempotency_key WHERE t.paid_at IS NOT NULL GROUP BY p.requisition_id HAVING count(*) > 1",
    )
    if payouts_per_requisition:
        violations.append(
            Violation(
                "one-disbursement-per-payment", "a requisition paid out twice", _evidence(payouts_per_requisition)
            )
        )
    orphan = _rows(
        db,
        "SELECT t.provider, t.idempotency_key, t.reference, t.paid_at, t.calls, p.state, p.executions, "
        "p.requisition_id, p.last_error FROM provider_transfers t LEFT JOIN payments p ON p.id = t.idempotency_key "
        "WHERE t.paid_at IS NOT NULL AND (p.id IS NULL OR p.state <> 'completed')",
    )
    if orphan:
        violations.append(
            Violation(
                "one-disbursement-per-payment",
                f"{len(orphan)} payout(s) the payment service does not count as completed (money out, books say not)",
                _evidence(orphan),
            )
        )
    unpaid = _rows(
        db,
        "SELECT p.id, p.requisition_id, p.provider, p.provider_reference FROM payments p WHERE p.state = 'completed' "
        "AND NOT EXISTS (SELECT 1 FROM provider_transfers t WHERE t.idempotency_key = p.id AND t.paid_at IS NOT NULL)",
    )
    if unpaid:
        violations.append(
            Violation("one-disbursement-per-payment", "completed payments the provider never paid", _evidence(unpaid))
        )
    wrong_amount = _rows(
        db,
        "SELECT p.id, p.amount_minor, t.amount_minor AS paid_minor FROM payments p JOIN provider_transfers t "
        "ON t.idempotency_key = p.id WHERE t.paid_at IS NOT NULL AND t.amount_minor <> p.amount_minor",
    )
    if wrong_amount:
        violations.append(Violation("one-disbursement-per-payment", "paid a different amount", _evidence(wrong_amount)))
    processing = _rows(
        db, "SELECT id, requisition_id, executions, attempts, updated_at FROM payments WHERE state = 'processing'"
    )
    if processing:
        violations.append(
            Violation("requisitions-terminal", f"{len(processing)} payment(s) still processing", _evidence(processing))
        )
    return violations


# -- 4 to 6: the ledger ----------------------------------------------------------------------


def check_postings(dbs: dict[str, Database], max_executions: int) -> list[Violation]:
    """One posting per hold; a hold is posted iff its payment completed; no hold left open at the end."""
    violations: list[Violation] = []
    ledger = dbs["ledger"]
    resolved_twice = _rows(
        ledger,
        "SELECT pending_id, array_agg(kind) AS kinds, array_agg(id::text) AS ids FROM transfers "
        "WHERE pending_id IS NOT NULL GROUP BY pending_id HAVING count(*) > 1",
    )
    per_requisition = _rows(
        ledger,
        "SELECT requisition_id, kind, count(*) AS n FROM transfers WHERE requisition_id IS NOT NULL "
        "AND kind IN ('hold', 'post', 'void') GROUP BY requisition_id, kind HAVING count(*) > 1",
    )
    if resolved_twice or per_requisition:
        violations.append(
            Violation(
                "one-posting-per-hold", "a hold resolved more than once", _evidence([*resolved_twice, *per_requisition])
            )
        )

    kinds: dict[str, set[str]] = defaultdict(set)
    for row in _rows(ledger, "SELECT requisition_id::text AS r, kind FROM transfers WHERE requisition_id IS NOT NULL"):
        kinds[row["r"]].add(row["kind"])
    statuses = {
        str(r["id"]): r
        for r in _rows(dbs["requisition"], "SELECT id, status, voucher_no, payee_method FROM requisitions")
    }
    payments = {
        str(p["requisition_id"]): p
        for p in _rows(dbs["payment"], "SELECT requisition_id, state, executions FROM payments")
    }
    mismatched = []
    for rid, req in statuses.items():
        held = kinds.get(rid, set())
        payment = payments.get(rid)
        completed = payment is not None and payment["state"] == "completed"
        problems = []
        if ("post" in held) != completed:
            problems.append("posted without a completed payment" if "post" in held else "paid but never posted")
        if req["status"] == "paid" and not completed:
            problems.append("requisition paid without a completed payment")
        if completed and req["status"] != "paid":
            problems.append("payment completed but the requisition is not paid")
        open_hold = "hold" in held and not held & {"post", "void"}
        if open_hold and final(req["status"], payment, max_executions):
            problems.append("hold left open on a finished requisition")
        if problems:
            mismatched.append(
                {"requisition": rid, **req, "transfers": sorted(held), "payment": payment, "why": problems}
            )
    if mismatched:
        violations.append(
            Violation(
                "one-posting-per-hold",
                f"{len(mismatched)} requisition(s) whose ledger disagrees with their payment",
                _evidence(mismatched),
            )
        )

    return violations


def check_books(dbs: dict[str, Database]) -> list[Violation]:
    """Debits equal credits (posted and pending), the cache equals the transfers, no float below zero."""
    from services.ledger.service import verify_balances

    violations: list[Violation] = []
    ledger = dbs["ledger"]
    totals = _rows(
        ledger,
        "SELECT currency, sum(debits_posted) AS dp, sum(credits_posted) AS cp, sum(debits_pending) AS dh, "
        "sum(credits_pending) AS ch FROM accounts GROUP BY currency",
    )
    unbalanced = [t for t in totals if t["dp"] != t["cp"] or t["dh"] != t["ch"]]
    if unbalanced:
        violations.append(Violation("ledger-balanced", "debits differ from credits", _evidence(unbalanced)))
    with ledger.uow() as uow:
        mismatches = verify_balances(uow.session)
    if mismatches:
        violations.append(
            Violation(
                "ledger-balanced",
                "cached balances differ from the transfers",
                _evidence({"account": code} for code in mismatches),
            )
        )
    negative = []
    for account in _rows(
        ledger,
        "SELECT code, debits_posted, credits_posted, debits_pending, credits_pending FROM accounts "
        "WHERE kind = 'float'",
    ):
        totals_ = Totals(
            account["debits_posted"], account["credits_posted"], account["debits_pending"], account["credits_pending"]
        )
        if totals_.available < 0 or totals_.balance < 0:
            negative.append({**account, "available": totals_.available, "balance": totals_.balance})
    if negative:
        violations.append(Violation("no-negative-float", "a float went below zero", _evidence(negative)))
    return violations


# -- 7: vouchers -----------------------------------------------------------------------------


def check_vouchers(dbs: dict[str, Database]) -> list[Violation]:
    """Per branch, the voucher numbers issued are exactly 1..last, each once."""
    db = dbs["requisition"]
    last = {r["branch_id"]: r["last_no"] for r in _rows(db, "SELECT branch_id, last_no FROM voucher_sequences")}
    seqs: dict[str, list[int]] = defaultdict(list)
    codes: dict[str, str] = {}
    for row in _rows(db, "SELECT branch_id, branch_code, voucher_seq FROM requisitions WHERE voucher_seq IS NOT NULL"):
        seqs[row["branch_id"]].append(row["voucher_seq"])
        codes[row["branch_id"]] = row["branch_code"]
    broken = []
    for branch in sorted(set(last) | set(seqs)):
        issued = sorted(seqs.get(branch, []))
        top = last.get(branch, 0)
        missing = sorted(set(range(1, top + 1)) - set(issued))
        duplicated = sorted(n for n, count in Counter(issued).items() if count > 1)
        beyond = [n for n in issued if n > top or n < 1]
        if missing or duplicated or beyond:
            broken.append(
                {
                    "branch": codes.get(branch, branch),
                    "last_no": top,
                    "issued": len(issued),
                    "missing": missing[:EVIDENCE_ROWS],
                    "duplicated": duplicated[:EVIDENCE_ROWS],
                    "beyond_counter": beyond[:EVIDENCE_ROWS],
                }
            )
    return [Violation("vouchers-gap-free", "voucher numbers are not 1..N per branch", broken)] if broken else []


# -- 8: messages -----------------------------------------------------------------------------


def check_messages(dbs: dict[str, Database]) -> tuple[list[Violation], list[dict[str, Any]]]:
    """Nothing undelivered, nothing buried without an alert; also the messages re-sent many times (notes)."""
    violations: list[Violation] = []
    notes: list[dict[str, Any]] = []
    alerts = " ".join(r["message"] for r in _rows(dbs["requisition"], "SELECT message FROM alerts"))
    for name in DATABASES:
        db = dbs[name]
        buried = _rows(
            db,
            "SELECT d.id, d.message_id, d.task_name, d.envelope->>'type' AS type, "
            "d.envelope->'payload'->>'requisition_id' AS requisition_id, d.attempts, d.failed_at, "
            "left(d.error, 400) AS error, "
            # Whether some other delivery of the same message took effect after all.
            "EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = d.message_id) AS took_effect_anyway "
            "FROM dead_letters d WHERE d.replayed_at IS NULL ORDER BY d.id",
        )
        unalerted = [row for row in buried if str(row["message_id"]) not in alerts]
        if unalerted:
            violations.append(
                Violation(
                    "no-silent-dead-letters",
                    f"{len(unalerted)} dead letter(s) in {name} with no alert about them",
                    _evidence({"database": name, **row} for row in unalerted),
                )
            )
        undelivered, forgotten = open_messages(db)
        if undelivered:
            violations.append(
                Violation(
                    "no-undelivered-messages",
                    f"{len(undelivered)} outbox message(s) of {name} never acknowledged by every consumer",
                    _evidence({"database": name, **row} for row in undelivered),
                )
            )
        if forgotten:
            # Every consumer acknowledged it, yet the row was never marked delivered: the relay
            # keeps "re-sending" it to nobody (no consumer is missing), so no new acknowledgement
            # ever comes to mark it, and it never leaves the re-send loop.
            violations.append(
                Violation(
                    "no-retry-loops",
                    f"{len(forgotten)} outbox message(s) of {name} acknowledged by every consumer but never marked "
                    "delivered: the relay re-sends them (to nobody) for ever",
                    _evidence({"database": name, **row} for row in forgotten),
                )
            )
        notes += [
            {"database": name, **_plain(row)}
            for row in _rows(
                db,
                "SELECT seq, message_id, event_type, resends FROM outbox WHERE resends >= :n ORDER BY resends DESC",
                n=RESEND_WARNING,
            )
        ]
    return violations, notes


def open_messages(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Outbox messages not marked delivered: those some consumer has not acknowledged (or that
    were never published), and those every consumer acknowledged although the mark is missing."""
    rows = _rows(
        db,
        "SELECT o.seq, o.message_id, o.event_type, o.envelope, o.created_at, o.published_at, o.resends, o.resent_at, "
        "array_remove(array_agg(a.subscriber || ' at ' || a.acked_at::text ORDER BY a.acked_at), NULL) AS acks "
        "FROM outbox o LEFT JOIN outbox_acks a ON a.message_id = o.message_id "
        "WHERE o.published_at IS NULL OR o.acked_at IS NULL GROUP BY o.seq ORDER BY o.seq",
    )
    undelivered, forgotten = [], []
    for row in rows:
        envelope = row.pop("envelope")
        acked = {ack.split(" at ", 1)[0] for ack in row["acks"] or []}
        row["not_acknowledged_by"] = sorted(set(recipients(envelope)) - acked)
        if row["published_at"] is None or row["not_acknowledged_by"]:
            undelivered.append(row)
        else:
            forgotten.append(row)
    return undelivered, forgotten


def _unacked_tasks(broker_url: str) -> dict[str, dict[str, Any]]:
    """The tasks the broker has handed to a worker and not seen acknowledged (kombu's ``unacked`` hash)."""
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    tasks: dict[str, dict[str, Any]] = {}
    for raw in client.hvals("unacked"):
        try:
            message = json.loads(raw)[0]
            headers = message.get("headers") or {}
            tasks[str(headers.get("id"))] = {
                "task": headers.get("task"),
                "id": headers.get("id"),
                "retries": headers.get("retries"),
                "eta": headers.get("eta"),
                "queue": (message.get("properties") or {}).get("delivery_info", {}).get("routing_key"),
            }
        except (ValueError, IndexError, AttributeError, TypeError):
            continue
    return tasks


def check_retry_loops(broker_url: str, window_seconds: float = 6.0) -> list[Violation]:
    """Once quiet, no task may still be retrying: the same task id seen again with more retries.

    Each retry is a new message with the same task id and a higher ``retries`` header, held by a
    worker until its countdown (at most a quarter of the visibility timeout) runs out, so a task
    in a retry loop shows up in two samples a few seconds apart with its count risen. A message
    merely left behind by a killed worker keeps its count, and is handed back by Redis anyway.
    """
    try:
        first = _unacked_tasks(broker_url)
        time.sleep(window_seconds)
        second = _unacked_tasks(broker_url)
    except Exception as exc:
        return [Violation("no-retry-loops", f"could not read the broker: {exc}", [])]
    looping = [
        {**task, "retries_before": first[task_id].get("retries")}
        for task_id, task in second.items()
        if task_id in first and (task.get("retries") or 0) > (first[task_id].get("retries") or 0)
    ]
    if looping:
        return [
            Violation(
                "no-retry-loops",
                f"{len(looping)} task(s) still retrying {window_seconds:.0f}s after the system went quiet",
                _evidence(looping),
            )
        ]
    return []


def check_all(
    dbs: dict[str, Database],
    chains: list[Chain],
    max_executions: int,
    broker_url: str,
    faults: Iterable[dict[str, Any]] = (),
) -> tuple[list[Violation], list[dict[str, Any]]]:
    """Every invariant; the violations, and notes worth a look that break nothing."""
    violations: list[Violation] = []
    violations += check_requisitions(dbs, chains, max_executions, list(faults))
    violations += check_disbursements(dbs)
    violations += check_postings(dbs, max_executions)
    violations += check_books(dbs)
    violations += check_vouchers(dbs)
    message_violations, notes = check_messages(dbs)
    violations += message_violations
    violations += check_retry_loops(broker_url)
    return violations, notes


# -- observations: no listed invariant, but worth a person's eye -------------------------------


def _processed(db: Database, message_ids: Iterable[str | None]) -> set[str]:
    """Which of these message ids the service's inbox recorded (it took effect, or was refused)."""
    ids = [uuid.UUID(m) for m in message_ids if m]
    if not ids:
        return set()
    return {
        str(r["message_id"]) for r in _rows(db, "SELECT message_id FROM inbox WHERE message_id = ANY(:ids)", ids=ids)
    }


def faults_around(faults: Iterable[dict[str, Any]], at: float) -> list[str]:
    """The faults injected around a moment (seconds from it; negative: before it)."""
    timeline = sorted((f["wall"], f"{f['kind']} {f['target']}") for f in faults if "wall" in f)
    return [f"{what} {when - at:+.2f}s" for when, what in timeline if -10 <= when - at <= 40]


def observations(dbs: dict[str, Database], chains: list[Chain], faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keyed requests answered 202 that never got a definitive answer: the reply was lost, or the
    command itself never arrived.

    The client coped (it found its requisition by purpose, or paid again with a fresh code), so
    no listed invariant broke; but "202 Accepted" and the ``Idempotency-Key`` promise (a retry
    gets the first outcome) did not hold, and the service's inbox says which of the two happened.
    """

    def nearby(at: float) -> list[str]:
        return faults_around(faults, at)

    found: list[dict[str, Any]] = []
    created = _processed(dbs["requisition"], [c.message_id for c in chains])
    attempts = [(c, a) for c in chains for a in c.payment_attempts if a.get("outcome") in ("abandoned", "gave-up")]
    paid = _processed(dbs["payment"], [a.get("message_id") for _, a in attempts])
    for chain in chains:
        if chain.accepted_202 and any("found by purpose" in note for note in chain.notes):
            found.append(
                {
                    "kind": "create-answer-lost" if chain.message_id in created else "create-command-unseen",
                    "chain": chain.number,
                    "key": chain.key,
                    "message_id": chain.message_id,
                    "requisition_id": chain.requisition_id,
                    "answers": dict(chain.create_answers),
                    "faults_nearby": nearby(chain.started_at),
                    "detail": "POST /requisitions answered 202 to every retry of its key although the requisition "
                    "was created; the client found it in its list by purpose",
                }
            )
    for chain, attempt in attempts:
        message_id = attempt.get("message_id")
        lost = message_id is not None and message_id not in paid
        found.append(
            {
                "kind": "payment-command-lost" if lost else "payment-answer-unknown",
                "chain": chain.number,
                "requisition_id": chain.requisition_id,
                **attempt,
                "faults_nearby": nearby(attempt["at"]),
                "detail": "POST .../payment answered 202 to its key for 30 s, and the payment service never "
                "received its command (not in its inbox); treasury paid again with a fresh code. Faults around it: "
                + (", ".join(nearby(attempt["at"])) or "none")
                if lost
                else "POST .../payment gave no definitive answer",
            }
        )
    return found


# -- quiescence and the census ---------------------------------------------------------------


def open_work(dbs: dict[str, Database], max_executions: int) -> dict[str, int]:
    """What is still moving: unfinished requisitions, processing payments, undelivered messages."""
    requisitions = _rows(dbs["requisition"], "SELECT id, status FROM requisitions")
    payments = {
        str(p["requisition_id"]): p
        for p in _rows(dbs["payment"], "SELECT requisition_id, state, executions FROM payments")
    }
    unfinished = sum(1 for r in requisitions if not final(r["status"], payments.get(str(r["id"])), max_executions))
    # Messages every consumer acknowledged but never marked delivered wait for nothing: a
    # violation of their own (check_messages), not something quiescence can wait out.
    outbox = sum(len(open_messages(dbs[name])[0]) for name in DATABASES)
    processing = sum(1 for p in payments.values() if p["state"] == "processing")
    return {"unfinished_requisitions": unfinished, "processing_payments": processing, "undelivered_messages": outbox}


def census(dbs: dict[str, Database]) -> dict[str, Any]:
    """Requisitions by status, payments by state, transfers by kind, provider calls: the run's outcome."""

    def by(db: Database, sql: str) -> dict[str, int]:
        return {str(r["k"]): int(r["n"]) for r in _rows(db, sql)}

    return {
        "requisitions_by_status": by(
            dbs["requisition"], "SELECT status AS k, count(*) AS n FROM requisitions GROUP BY 1"
        ),
        "payments_by_state": by(dbs["payment"], "SELECT state AS k, count(*) AS n FROM payments GROUP BY 1"),
        "payment_executions": by(
            dbs["payment"], "SELECT outcome AS k, count(*) AS n FROM payment_executions GROUP BY 1"
        ),
        "provider_calls_by_outcome": by(
            dbs["payment"], "SELECT outcome AS k, count(*) AS n FROM provider_attempts GROUP BY 1"
        ),
        "transfers_by_kind": by(dbs["ledger"], "SELECT kind AS k, count(*) AS n FROM transfers GROUP BY 1"),
        "alerts_by_kind": by(dbs["requisition"], "SELECT kind AS k, count(*) AS n FROM alerts GROUP BY 1"),
        "inbox_messages": sum(int(_rows(dbs[name], "SELECT count(*) AS n FROM inbox")[0]["n"]) for name in DATABASES),
        "outbox_messages": sum(int(_rows(dbs[name], "SELECT count(*) AS n FROM outbox")[0]["n"]) for name in DATABASES),
        "outbox_resends": sum(
            int(_rows(dbs[name], "SELECT coalesce(sum(resends), 0) AS n FROM outbox")[0]["n"]) for name in DATABASES
        ),
    }
