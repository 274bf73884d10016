"""Helpers of the payment tests (no tests here): treasury users, authenticators, payable requisitions.

A payable requisition is a real one where it matters: submitted by alice, approved by bob
over HTTP, so the requisition service follows the payment to ``paid``. The ledger's part
(``FundsReserved``) is published as the ledger would publish it, to every subscriber. Tests
that only check refusals, which emit nothing, use requisitions known to the payment service
alone, made by sending it the two events directly.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyotp
from celery import Celery

from services.gateway import identity
from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.engine import Database
from shared.messaging.app import make_celery
from tests.support import Api, Stack, requisition_body, scalar, wait_for

CASH = {"name": "Shell Moi Avenue", "method": "cash"}


def bank(account_ref: str) -> dict[str, str]:
    return {"name": "Davis & Shirtliff", "method": "bank", "account_ref": account_ref}


def mobile(account_ref: str) -> dict[str, str]:
    return {"name": "Jane Mwende", "method": "mobile_money", "account_ref": account_ref}


@dataclass
class Person:
    user_id: str
    username: str
    token: str


def new_person(
    dbs: dict[str, Database], roles: tuple[str, ...] = ("treasury",), branches: tuple[str, ...] = ("HQ",)
) -> Person:
    """A fresh user (a random name), so no test shares an authenticator or a lockout with another."""
    username = f"{roles[0][:5]}-{uuid.uuid4().hex[:10]}"
    with dbs["gateway"].uow() as uow:
        user = identity.create_user(uow.session, username, username.title(), list(roles), list(branches))
        token = identity.issue_token(uow.session, user, "test")
        uow.commit()
        return Person(str(user.id), username, token)


def user_id(dbs: dict[str, Database], username: str) -> str:
    return str(scalar(dbs["gateway"], "SELECT id FROM users WHERE username = :u", u=username))


@dataclass
class Authenticator:
    """An authenticator app: codes of steps not used yet, clear of the step boundary."""

    secret: str
    spent: set[int] = field(default_factory=set)

    @property
    def totp(self) -> pyotp.TOTP:
        return pyotp.TOTP(self.secret)

    def code(self) -> str:
        """A fresh code the server will accept: waits for the next time step if this one is used up."""
        while True:
            now = time.time()
            step, into = divmod(now, 30)
            step = int(step)
            # The server checks a moment later, maybe in the next step: step and step+1 stay
            # inside its ±1 window then; step-1 only while this step has seconds to run.
            candidates = [step + 1, step] + ([step - 1] if into < 20 else [])
            for candidate in candidates:
                if candidate not in self.spent:
                    self.spent.add(candidate)
                    return str(self.totp.generate_otp(candidate))
            time.sleep(30 - into + 0.2)

    def wrong_code(self) -> str:
        """A code no step near now accepts."""
        step = int(time.time() // 30)
        near = {self.totp.generate_otp(s) for s in range(step - 3, step + 4)}
        while True:
            guess = f"{random.randrange(10**6):06d}"
            if guess not in near:
                return guess


def enrol(api: Api, person: Person) -> Authenticator:
    """Enrol and activate an authenticator for a treasury user, as the user would."""
    enrolled = api.post("/api/v1/otp/enrolment", person.token)
    assert enrolled.status_code == 201, enrolled.text
    device = Authenticator(pyotp.parse_uri(enrolled.json()["provisioning_uri"]).secret)
    activated = api.post("/api/v1/otp/activation", person.token, json={"code": device.code()})
    assert activated.status_code == 200, activated.text
    return device


def treasurer(api: Api, dbs: dict[str, Database]) -> tuple[Person, Authenticator]:
    """A new treasury user with an active authenticator."""
    person = new_person(dbs)
    return person, enrol(api, person)


def requisition_status(api: Api, token: str, rid: str) -> str:
    return str(api.get(f"/api/v1/requisitions/{rid}", token).json()["status"])


def approved_requisition(
    api: Api, tokens: dict[str, str], payee: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """A real requisition: alice asks (NBO-CBD, T1), bob approves; returns it once approved."""
    created = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body(payee=payee or CASH, **fields))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    wait_for(lambda: requisition_status(api, tokens["alice"], rid) == "pending_approval", 15, what="routing")
    approved = api.post(f"/api/v1/requisitions/{rid}/approve", tokens["bob"], json={"comment": "ok"})
    assert approved.status_code == 200, approved.text
    # The ledger moves it on at once (reserved, or awaiting funds): any of these means approved.
    after = {"approved", "reserved", "awaiting_funds"}
    wait_for(lambda: requisition_status(api, tokens["alice"], rid) in after, 15, what="approval")
    return dict(api.get(f"/api/v1/requisitions/{rid}", tokens["alice"]).json())


def ensure_float(api: Api, tokens: dict[str, str], branch: str = "NBO-CBD") -> None:
    """A float deep enough for every test (the ledger serves earlier approvals first)."""
    opened = api.post(
        "/api/v1/floats", tokens["tom"], json={"branch": branch, "amount": {"minor_units": 10**11, "currency": "KES"}}
    )
    assert opened.status_code in (201, 409), opened.text


def payable(db: Database, rid: str) -> bool:
    return bool(
        scalar(
            db,
            "SELECT count(*) FROM payable_requisitions WHERE requisition_id = :r "
            "AND approved_at IS NOT NULL AND reserved_at IS NOT NULL",
            r=rid,
        )
    )


def reserved_requisition(
    api: Api,
    tokens: dict[str, str],
    settings: Settings,
    dbs: dict[str, Database],
    payee: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A real, approved requisition whose funds the ledger holds: payable (``fields``: its own amount...)."""
    ensure_float(api, tokens)
    requisition = approved_requisition(api, tokens, payee, **fields)
    wait_for(lambda: payable(dbs["payment"], requisition["id"]), 15, what="the payment service to see it payable")
    return requisition


def send_to_payment(settings: Settings, event: str, payload: dict[str, Any]) -> None:
    """Deliver an event to the payment service alone (as the relay delivers it to each subscriber)."""
    app: Celery = make_celery(settings, "test")
    envelope = Envelope(type=event, payload=payload, actor=SYSTEM_ACTOR).to_dict()
    app.send_task(catalog.handle_event_task("payment"), args=[envelope], queue="payment")


def known_to_payment_only(
    settings: Settings,
    dbs: dict[str, Database],
    requester_id: str,
    approver_ids: list[str],
    *,
    reserved: bool = True,
    cancelled: bool = False,
) -> str:
    """A requisition only the payment service knows of, for tests whose refusals emit nothing."""
    rid = str(uuid.uuid4())
    branch_id = str(scalar(dbs["gateway"], "SELECT id FROM branches WHERE code = 'NBO-CBD'"))
    region_id = str(scalar(dbs["gateway"], "SELECT region_id FROM branches WHERE code = 'NBO-CBD'"))
    amount = {"minor_units": 250_000, "currency": "KES"}
    send_to_payment(
        settings,
        catalog.REQUISITION_APPROVED.name,
        {
            "requisition_id": rid,
            "case_id": str(uuid.uuid4()),
            "approver_id": approver_ids[-1],
            "approver_name": "approver",
            "comment": "",
            "voucher_no": f"NBO-CBD-T{uuid.uuid4().hex[:6]}",
            "branch_id": branch_id,
            "region_id": region_id,
            "requester_id": requester_id,
            "approver_ids": approver_ids,
            "amount": amount,
            "category": "fuel",
            "payee": CASH,
            "approved_at": datetime.now(UTC).isoformat(),
        },
    )
    if reserved:
        send_to_payment(
            settings,
            catalog.FUNDS_RESERVED.name,
            {"requisition_id": rid, "branch_id": branch_id, "transfer_id": str(uuid.uuid4()), "amount": amount},
        )
    if cancelled:
        send_to_payment(
            settings,
            catalog.REQUISITION_CANCELLED.name,
            {"requisition_id": rid, "branch_id": branch_id, "actor_id": requester_id, "reason": "no longer needed"},
        )
    column = "cancelled_at" if cancelled else "reserved_at" if reserved else "approved_at"
    wait_for(
        lambda: scalar(
            dbs["payment"],
            f"SELECT count(*) FROM payable_requisitions WHERE requisition_id = :r AND {column} IS NOT NULL",
            r=rid,
        ),
        15,
        what="the payment service's read model",
    )
    return rid


def pay(api: Api, person: Person, rid: str, code: str, **kwargs: Any) -> Any:
    return api.post(f"/api/v1/requisitions/{rid}/payment", person.token, json={"otp": code}, **kwargs)


def wait_payment(api: Api, token: str, rid: str, state: str, timeout: float = 20) -> dict[str, Any]:
    """The payment once it reaches ``state``."""

    def reached() -> dict[str, Any] | None:
        response = api.get(f"/api/v1/requisitions/{rid}/payment", token)
        body = response.json() if response.status_code == 200 else {}
        return body if body.get("state") == state else None

    return dict(wait_for(reached, timeout, 0.05, f"the payment of {rid} to be {state}"))


def events(db: Database, event: str, rid: str) -> list[dict[str, Any]]:
    """Payloads of the events of one type the payment service emitted about one requisition."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT envelope FROM outbox WHERE event_type = :t AND envelope->'payload'->>'requisition_id' = :r "
                "ORDER BY seq"
            ),
            {"t": event, "r": rid},
        ).scalars()
        return [dict(e["payload"]) for e in rows]


def reconcile(settings: Settings, stack: Stack, as_of: datetime) -> None:
    """Run the reconciler once, as beat would, with the clock at ``as_of``; return when it has run."""
    spec = catalog.RECONCILE_PAYMENTS
    envelope = Envelope(type=spec.name, payload={"as_of": as_of.isoformat()}, actor=SYSTEM_ACTOR).to_dict()
    task_id = make_celery(settings, "test").send_task(spec.name, args=[envelope], queue=spec.queue).id
    # A maintenance task stores no result and may change nothing: the worker's record of the run
    # is the one sign that it ran.
    worker = next(p for p in stack.procs if p.name == "worker-payment")
    wait_for(lambda: f"{spec.name}[{task_id}] succeeded" in worker.log(), 15, what="the reconciler to run")
