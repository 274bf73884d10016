"""Nothing accepted is lost when Redis restarts without persistence: end-to-end delivery.

A stack of its own (its own databases and its own ``redis-server``), so killing the broker
touches no other test. Workers are paused with SIGSTOP while Redis is restarted, so the
messages waiting for them are certainly lost with it; the senders' re-sends must bring the
sagas to their end anyway, whatever order the re-sent events arrive in.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.gateway import identity
from shared.config import DATABASES, load_settings
from shared.db.engine import Database
from shared.db.migrate import upgrade
from tests.support import Api, Proc, Stack, ThrowawayRedis, free_port, kes, requisition_body, scalar, wait_for

# Under the session's prefix, so two test sessions on one machine keep apart.
PREFIX = os.environ.get("PETTYCASH_TEST_DB_PREFIX", "pettycash_test_") + "faults_"


@dataclass
class FaultStack:
    stack: Stack
    broker: ThrowawayRedis
    dbs: dict[str, Database]
    tokens: dict[str, str]
    api: Api

    def worker(self, service: str) -> Proc:
        return next(p for p in self.stack.procs if p.name == f"worker-{service}")

    def status(self, rid: str) -> str:
        return str(self.api.get(f"/api/v1/requisitions/{rid}", self.tokens["alice"]).json()["status"])


def _recreate(server_url: str, name: str) -> None:
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture
def faults(backing: dict[str, str], test_env: dict[str, str], tmp_path: Path) -> Iterator[FaultStack]:
    broker = ThrowawayRedis(tmp_path / "redis.log").start()
    server = make_url(backing["postgres"])
    template = server.set(database=PREFIX + "SVC").render_as_string(hide_password=False).replace("SVC", "{service}")
    env = dict(
        test_env,
        PETTYCASH_DATABASE_URL=template,
        PETTYCASH_BROKER_URL=broker.url,
        PETTYCASH_GATEWAY_PORT=str(free_port()),
        PETTYCASH_VAR_DIR=str(tmp_path / "var"),
        PETTYCASH_REDELIVERY_SECONDS="2",
    )
    settings = load_settings(env)
    for name in DATABASES:
        _recreate(backing["postgres"], PREFIX + name)
        upgrade(f"services.{name}", settings.database_url(name))
    dbs = {name: Database(settings.database_url(name)) for name in DATABASES}
    with dbs["gateway"].uow() as uow:
        tokens = identity.seed_demo(uow.session)
        uow.commit()
    stack = Stack(env, tmp_path).start()
    users = scalar(dbs["gateway"], "SELECT count(*) FROM users")
    wait_for(lambda: scalar(dbs["approval"], "SELECT count(*) FROM approvers") >= users, 30, what="the directory")
    try:
        yield FaultStack(stack, broker, dbs, tokens, Api(stack.base_url))
    finally:
        stack.stop()
        broker.stop()
        for db in dbs.values():
            db.dispose()


def test_a_redis_restart_loses_no_accepted_requisition(faults: FaultStack) -> None:
    approval = faults.worker("approval")
    approval.signal(signal.SIGSTOP)
    try:
        created = [
            faults.api.post("/api/v1/requisitions", faults.tokens["alice"], json=requisition_body(amount=kes(500)))
            for _ in range(5)
        ]
        assert [c.status_code for c in created] == [201] * 5, [c.text for c in created]
        # Let the relays and workers hand everything to the broker, then lose the broker's memory.
        wait_for(
            lambda: scalar(faults.dbs["requisition"], "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0,
            10,
            what="publication",
        )
        faults.broker.restart()
    finally:
        approval.signal(signal.SIGCONT)
    rids = [c.json()["id"] for c in created]
    for rid in rids:
        wait_for(lambda r=rid: faults.status(r) == "pending_approval", 60, 0.2, f"{rid} to be routed after the loss")
    assert scalar(faults.dbs["approval"], "SELECT count(*) FROM approval_cases") == 5
    # Every worker lived through the restart (kombu's Redis transport used to die restoring
    # unacknowledged messages on a connection already gone: shared/messaging/redis_transport.py).
    assert [p.name for p in faults.stack.procs if p.process is not None and p.process.poll() is not None] == []


def test_lost_events_arrive_again_in_any_order_and_the_saga_converges(faults: FaultStack) -> None:
    opened = faults.api.post("/api/v1/floats", faults.tokens["tom"], json={"branch": "NBO-CBD", "amount": kes(50_000)})
    assert opened.status_code == 201, opened.text
    rid = faults.api.post(
        "/api/v1/requisitions", faults.tokens["alice"], json=requisition_body(amount=kes(900))
    ).json()["id"]
    wait_for(lambda: faults.status(rid) == "pending_approval", 20, 0.1, "routing")
    requisition = faults.worker("requisition")
    requisition.signal(signal.SIGSTOP)
    try:
        approved = faults.api.post(f"/api/v1/requisitions/{rid}/approve", faults.tokens["bob"], json={"comment": "ok"})
        assert approved.status_code == 200, approved.text
        # The approval's events and the ledger's reservation now wait for the paused worker...
        wait_for(
            lambda: scalar(faults.dbs["ledger"], "SELECT count(*) FROM transfers WHERE requisition_id = :r", r=rid),
            20,
            what="the hold",
        )
        faults.broker.restart()  # ...and are lost.
    finally:
        requisition.signal(signal.SIGCONT)
    # Re-sent by their senders in whatever order their relays get to them: the requisition
    # service takes the approval before the reservation, however they arrive.
    wait_for(lambda: faults.status(rid) == "reserved", 90, 0.2, "the requisition to be reserved")
    history = faults.api.get(f"/api/v1/requisitions/{rid}", faults.tokens["alice"]).json()["history"]
    actions = [h["action"] for h in history]
    assert actions.index("approved") < actions.index("funds-reserved")
    assert scalar(faults.dbs["requisition"], "SELECT count(*) FROM dead_letters") == 0
