"""Measure the payment path: OTP submission until the ledger has posted the hold.

Run against a running stack (``make run``, ideally on PostgreSQL and Redis) with the same
environment, so it can read the ledger's ``transfers.created_at`` and create treasury users:

    .venv/bin/python -m load_tests.payment_latency --count 100

It opens (or reuses) the NBO-CBD float, has alice submit and bob approve ``count`` cash
requisitions, waits until each is reserved, then pays them one after another, each with a
fresh TOTP code from one of several treasury users (a time step is accepted once per user).
The lag is the posting's ``created_at`` minus the instant just before the payment POST.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pyotp
import requests
from sqlalchemy import Uuid, column, select, table

from services.gateway import identity
from shared.config import Settings, load_settings
from shared.db.engine import Database
from shared.db.types import UTCDateTime

TRANSFERS = table("transfers", column("requisition_id", Uuid()), column("kind"), column("created_at", UTCDateTime()))


Call = Callable[..., requests.Response]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Device:
    """One treasury user's authenticator: hands out codes of steps not used yet."""

    def __init__(self, token: str, secret: str) -> None:
        self.token = token
        self.totp = pyotp.TOTP(secret)
        self.used: set[int] = set()

    def code(self) -> str | None:
        now = int(time.time() // 30)
        for step in (now - 1, now, now + 1):
            if step not in self.used:
                self.used.add(step)
                return str(self.totp.at(step * 30))
        return None


def fresh_code(devices: list[Device]) -> tuple[Device, str]:
    """A device with an unused step, and its code (waits for the next step if none has one)."""
    while True:
        for device in devices:
            code = device.code()
            if code is not None:
                return device, code
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    settings = load_settings()
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    creds = dict(line.split() for line in (settings.var_dir / "demo-credentials.txt").read_text().splitlines())
    http = requests.Session()

    def call(method: str, path: str, token: str, **kwargs: object) -> requests.Response:
        return http.request(method, base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs)  # type: ignore[arg-type]

    call(
        "POST",
        "/api/v1/floats",
        creds["tom"],
        json={"branch": "NBO-CBD", "amount": {"minor_units": 10**11, "currency": "KES"}},
    )

    devices = make_treasurers(settings, call, args.count // 3 + 2)
    ids = reserved_requisitions(call, creds, args.count)
    measure(settings, call, devices, ids)


def make_treasurers(settings: Settings, call: Call, count: int) -> list[Device]:
    """Treasury users with activated authenticators (created straight in the gateway database)."""
    gateway = Database(settings.database_url("gateway"))
    devices = []
    for _ in range(count):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        with gateway.uow() as uow:
            user = identity.create_user(uow.session, name, name, ["treasury"], ["HQ"])
            token = identity.issue_token(uow.session, user, "bench")
            uow.commit()
        uri = call("POST", "/api/v1/otp/enrolment", token).json()["provisioning_uri"]
        device = Device(token, pyotp.parse_uri(uri).secret)
        activated = call("POST", "/api/v1/otp/activation", token, json={"code": device.code()})
        activated.raise_for_status()
        devices.append(device)
    return devices


def reserved_requisitions(call: Call, creds: dict[str, str], count: int) -> list[str]:
    """Requisitions alice asked for and bob approved, once the ledger holds their money."""
    ids = []
    for i in range(count):
        body = {
            "branch": "NBO-CBD",
            "amount": {"minor_units": 100_00, "currency": "KES"},
            "category": "postage",
            "purpose": f"payment latency probe {i}",
            "payee": {"name": "Posta", "method": "cash"},
        }
        rid = call("POST", "/api/v1/requisitions", creds["alice"], json=body).json()["id"]
        while call("GET", f"/api/v1/requisitions/{rid}", creds["alice"]).json()["status"] != "pending_approval":
            time.sleep(0.01)
        call("POST", f"/api/v1/requisitions/{rid}/approve", creds["bob"], json={}).raise_for_status()
        ids.append(rid)
    for rid in ids:
        while call("GET", f"/api/v1/requisitions/{rid}", creds["alice"]).json()["status"] != "reserved":
            time.sleep(0.01)
    return ids


def measure(settings: Settings, call: Call, devices: list[Device], ids: list[str]) -> None:
    """Pay each one and time it until the ledger has posted the hold."""
    ledger = Database(settings.database_url("ledger"))
    posts, lags = [], []
    for rid in ids:
        device, code = fresh_code(devices)
        sent_at = datetime.now(UTC)
        started = time.perf_counter()
        response = call("POST", f"/api/v1/requisitions/{rid}/payment", device.token, json={"otp": code})
        posts.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        query = select(TRANSFERS.c.created_at).where(
            TRANSFERS.c.requisition_id == uuid.UUID(rid), TRANSFERS.c.kind == "post"
        )
        posted = None
        deadline = time.monotonic() + 30
        while posted is None and time.monotonic() < deadline:
            with ledger.engine.connect() as conn:
                posted = conn.execute(query).scalar()
            if posted is None:
                time.sleep(0.002)
        if posted is None:
            raise SystemExit(f"no posting for {rid} after 30 s")
        lags.append((posted - sent_at).total_seconds() * 1000)

    mode = "embedded" if settings.embedded else "redis+postgresql"
    print(f"{mode}: {len(ids)} payments")
    for label, values in (("payment POST answered", posts), ("OTP submitted -> posted", lags)):
        print(f"  {label:24} median {statistics.median(values):6.1f} ms  p95 {percentile(values, 95):6.1f} ms")


if __name__ == "__main__":
    main()
