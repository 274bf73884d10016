"""A rig for the gateway's request path: real processes, with the gateway's links in the test's hands.

- a throwaway ``redis-server`` (its own port; the shared Redis on 6379 is never touched), which
  a test may kill and start again;
- a requisition worker on that Redis and on a requisition database of its own (so nothing it
  does reaches the session stack's relay or workers), whose ``submit_requisition`` sleeps 1 s
  before committing (``PETTYCASH_FAULT_SLEEP``), so a command is reliably in flight for a while;
- gateways started per test, each reaching Redis and its database through :class:`TcpProxy`,
  so a test can cut the gateway alone off either, and count what it sends.

No relay runs here: it would publish the session stack's outbox to a broker nobody serves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.contracts import catalog
from shared.db.engine import Database
from tests import support
from tests.integration.gateway_path.netproxy import TcpProxy
from tests.support import WORKER_READY, Api, Proc, free_port, scalar, start_worker, wait_for

SUBMIT_SLEEP_SECONDS = 1.0
# What a Celery worker logs each time its consumer (re)connects to the broker.
CONNECTED = "celery.worker.consumer.connection"
OWN_REQUISITION_DB = "gwpath_requisition"  # after the session's database prefix


class ThrowawayRedis(support.ThrowawayRedis):
    """The shared throwaway ``redis-server``, with the names these tests use."""

    def kill(self) -> None:
        self.stop()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@dataclass
class Rig:
    """See the module docstring."""

    settings: Settings
    env: dict[str, str]
    log_dir: Path
    redis_server: ThrowawayRedis
    redis_proxy: TcpProxy
    pg_proxy: TcpProxy
    requisitions: Database
    worker: Proc | None = None
    gateways: list[Proc] = field(default_factory=list)

    def worker_env(self) -> dict[str, str]:
        return dict(
            self.env,
            PETTYCASH_BROKER_URL=self.redis_server.url,
            PETTYCASH_REQUISITION_DATABASE_URL=self.requisitions.url,
            PETTYCASH_FAULT_SLEEP=f"{catalog.SUBMIT_REQUISITION.name}={SUBMIT_SLEEP_SECONDS}",
        )

    def gateway_env(self, **extra: str) -> dict[str, str]:
        gateway_db = make_url(self.settings.database_url("gateway")).set(
            host="127.0.0.1", port=self.pg_proxy.port, query={"sslmode": "disable"}
        )
        return dict(
            self.env,
            PETTYCASH_BROKER_URL=f"redis://127.0.0.1:{self.redis_proxy.port}/0",
            PETTYCASH_GATEWAY_DATABASE_URL=gateway_db.render_as_string(hide_password=False),
            PETTYCASH_GATEWAY_PORT=str(free_port()),
            **extra,
        )

    def start_gateway(self, workers: int = 1, **extra: str) -> Api:
        """A gateway of the current test (stopped when it ends), reaching Redis and PostgreSQL through the proxies."""
        env = self.gateway_env(**extra)
        name = f"gateway-{len(self.gateways)}"
        proc = Proc(name, ["gateway", "--workers", str(workers), "--threads", "8"], env, self.log_dir / f"{name}.log")
        self.gateways.append(proc.start())
        base_url = f"http://127.0.0.1:{env['PETTYCASH_GATEWAY_PORT']}"
        wait_for(lambda: _answers(f"{base_url}/healthz", proc), 30, 0.1, "the gateway")
        api = Api(base_url)
        api.proc = proc  # type: ignore[attr-defined]
        return api

    def stop_gateways(self) -> None:
        while self.gateways:
            self.gateways.pop().stop()

    def start_worker(self) -> Proc:
        """(Re)start the rig's requisition worker and wait until it consumes."""
        self.stop_worker()
        self.worker = start_worker("requisition", self.worker_env(), self.log_dir, f"-{uuid.uuid4().hex[:6]}")
        self.worker.wait_ready(WORKER_READY)
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def worker_log(self) -> str:
        assert self.worker is not None
        return self.worker.log()

    def requisitions_with(self, purpose: str) -> int:
        return int(scalar(self.requisitions, "SELECT count(*) FROM requisitions WHERE purpose = :p", p=purpose))

    def restart_redis(self, down_seconds: float = 0.0) -> None:
        """Kill the throwaway Redis and start it again on the same port; wait until the worker is back."""
        before = self.worker_log().count(CONNECTED)
        self.redis_server.kill()
        time.sleep(down_seconds)
        self.redis_server.start()
        wait_for(lambda: self.worker_log().count(CONNECTED) > before, 60, 0.2, "the worker to reconnect")


def _answers(url: str, proc: Proc) -> bool:
    assert proc.process is not None
    if proc.process.poll() is not None:
        raise AssertionError(f"{proc.name} exited early:\n{proc.log()[-3000:]}")
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def recreate_database(server_url: str, name: str) -> None:
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def transactions(statements: list[tuple[int, str]]) -> list[tuple[str, list[str]]]:
    """Group a proxy's statements into transactions: (how it ended, its statements).

    A transaction runs from BEGIN to COMMIT or ROLLBACK on one connection; a statement outside
    one (autocommit) is its own, ended by ``"autocommit"``. The pool's ``;`` pings are left out.
    """
    open_ones: dict[int, list[str]] = {}
    done: list[tuple[str, list[str]]] = []
    for connection, sql in statements:
        word = sql.split(None, 1)[0].upper() if sql.strip() else ""
        if sql == ";":
            continue
        if word == "BEGIN":
            open_ones[connection] = []
        elif word in ("COMMIT", "ROLLBACK"):
            done.append((word, open_ones.pop(connection, [])))
        elif connection in open_ones:
            open_ones[connection].append(sql)
        else:
            done.append(("autocommit", [sql]))
    return done
