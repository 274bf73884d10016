"""Test plumbing: the real backing services, the real processes, and an HTTP client.

Nothing here fakes the system under test: databases are PostgreSQL, the broker is Redis,
and every worker, relay and gateway is a separate ``python -m pettycash`` process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll until ``predicate`` returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Proc:
    """A ``python -m pettycash`` child process in its own process group, logging to a file."""

    name: str
    args: list[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pettycash", *self.args],
            env=dict(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, marker: str, timeout: float = 30.0) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            return marker in self.log()

        wait_for(ready, timeout, 0.1, f"{self.name} to log {marker!r}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.signal(signal.SIGKILL)
        self.process.wait()


WORKER_READY = "ready."


def start_worker(service: str, env: Mapping[str, str], log_dir: Path, suffix: str = "") -> Proc:
    proc = Proc(f"worker-{service}{suffix}", ["worker", service], env, log_dir / f"worker-{service}{suffix}.log")
    return proc.start()


@dataclass
class Stack:
    """Every role of the system, started as separate processes on PostgreSQL and Redis."""

    env: dict[str, str]
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PETTYCASH_GATEWAY_PORT']}"

    def start(self, services: tuple[str, ...] = ("requisition", "approval", "payment", "ledger", "gateway")) -> Stack:
        """Start a worker per service (``gateway``: the projector), the relay and the gateway."""
        for service in services:
            self.procs.append(start_worker(service, self.env, self.log_dir))
        self.procs.append(Proc("relay", ["relay"], self.env, self.log_dir / "relay.log").start())
        gateway = Proc(
            "gateway", ["gateway", "--workers", "1", "--threads", "16"], self.env, self.log_dir / "gateway.log"
        )
        self.procs.append(gateway.start())
        for proc in self.procs:
            if proc.name.startswith("worker-"):
                proc.wait_ready(WORKER_READY)
        wait_for(lambda: _http_ok(f"{self.base_url}/healthz"), 30, 0.1, "the gateway")
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


class ThrowawayRedis:
    """A ``redis-server`` of a test's own, without persistence: a restart loses everything in it."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self.pings, 10, 0.05, "the throwaway redis-server")
        return self

    def pings(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, down_seconds: float = 0.5) -> None:
        """Kill it (losing every queued and unacknowledged message) and start it again on its port."""
        self.stop()
        time.sleep(down_seconds)
        self.start()


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


class Api:
    """A thin HTTP client for the gateway, one bearer token per call."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, token, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, token, **kwargs)


def requisition_body(**overrides: Any) -> dict[str, Any]:
    """A valid requisition body with a unique purpose (a random reference for lookups)."""
    body: dict[str, Any] = {
        "branch": "NBO-CBD",
        "amount": {"minor_units": 125_000, "currency": "KES"},
        "category": "fuel",
        "purpose": f"Generator diesel {uuid.uuid4().hex[:12]}",
        "payee": {"name": "Shell Moi Avenue", "method": "cash"},
    }
    body.update(overrides)
    return body


def scalar(db: Any, sql: str, **params: Any) -> Any:
    """One value from a read-only query against a service's database (a test oracle)."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def submit_envelope(dbs: Any) -> dict[str, Any]:
    """A ``requisition.submit_requisition`` envelope from alice for NBO-CBD, as the gateway sends it."""
    from sqlalchemy import text

    from shared.contracts import catalog
    from shared.contracts.envelope import Envelope

    with dbs["gateway"].engine.connect() as conn:
        branch = conn.execute(text("SELECT id, region_id FROM branches WHERE code = 'NBO-CBD'")).one()
        alice = conn.execute(text("SELECT id FROM users WHERE username = 'alice'")).scalar_one()
    body = requisition_body()
    del body["branch"]
    payload = dict(
        body, branch_id=str(branch.id), branch_code="NBO-CBD", region_id=str(branch.region_id), origin="branch"
    )
    actor = {"user_id": str(alice), "username": "alice", "roles": ["staff"], "branch_ids": [str(branch.id)]}
    return Envelope(type=catalog.SUBMIT_REQUISITION.name, payload=payload, actor=actor).to_dict()


def pettycash(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line as an operator would, and capture what it says."""
    return subprocess.run(
        [sys.executable, "-m", "pettycash", *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def kes(major: int) -> dict[str, Any]:
    """An amount of Kenyan shillings in its wire form (minor units)."""
    return {"minor_units": major * 100, "currency": "KES"}


def float_of(api: Api, token: str, branch: str) -> dict[str, int]:
    """A branch float's balance, held and available, in minor units."""
    return amounts_of(api.get(f"/api/v1/floats/{branch}", token).json()["floats"][0])


def amounts_of(float_body: dict[str, Any]) -> dict[str, int]:
    """A float's balance, held and available (its levels left out), in minor units."""
    return {k: float_body[k]["minor_units"] for k in ("balance", "held", "available")}


def settled_float(api: Api, token: str, ledger: Any, branch: str, timeout: float = 15) -> dict[str, int]:
    """A branch float as the API shows it, once the gateway's projection has caught up with the
    ledger (a change the reader did not make reaches the projection a moment after the ledger)."""
    from sqlalchemy import select

    from services.ledger.models import Account
    from services.ledger.service import account_snapshots

    def truth() -> dict[str, int]:
        with ledger.uow() as uow:
            ids = uow.session.scalars(select(Account.id).where(Account.kind == "float", Account.branch_code == branch))
            [snapshot] = account_snapshots(uow.session, list(ids))
        return amounts_of(snapshot["float"])

    return dict(wait_for(lambda: (shown := float_of(api, token, branch)) == truth() and shown, timeout, 0.05))


def database_template(server_url: str, prefix: str) -> str:
    """``PETTYCASH_DATABASE_URL`` for databases named ``<prefix><service>`` on this server."""
    marker = "SERVICEMARKER"
    named = make_url(server_url).set(database=prefix + marker)
    return named.render_as_string(hide_password=False).replace(marker, "{service}")


def drop_databases(server_url: str, prefix: str, *, create: bool = False) -> None:
    """Drop every service's database ``<prefix><service>`` (and create it empty again, if asked)."""
    from shared.config import DATABASES

    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in DATABASES:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{prefix}{name}" WITH (FORCE)'))
                if create:
                    conn.execute(text(f'CREATE DATABASE "{prefix}{name}"'))
    finally:
        admin.dispose()


def fresh_databases(server_url: str, prefix: str, settings: Any) -> None:
    """Drop and create every service's database ``<prefix><service>``, then migrate it."""
    from shared.config import DATABASES
    from shared.db.migrate import upgrade

    drop_databases(server_url, prefix, create=True)
    for name in DATABASES:
        upgrade(f"services.{name}", settings.database_url(name))


@dataclass
class ManualClock:
    """A clock moved by hand, for code that takes its time from an injected clock."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
