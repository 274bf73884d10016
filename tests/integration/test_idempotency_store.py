"""A keyed request's answer is stored with the snapshots its reply carried, in one commit; if
those cannot be projected, the answer is stored all the same (the projector brings them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Response
from sqlalchemy import delete, insert, select

from services.gateway.api.commands import Deferred
from services.gateway.idempotency import Claim
from services.gateway.models import IdempotencyRecord
from services.gateway.readmodels import rm_payment_runs
from shared.contracts import catalog
from shared.db.engine import Database

AT = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def _claimed(db: Database) -> Claim:
    claim = Claim(db, uuid.uuid4(), str(uuid.uuid4()))
    with db.uow() as uow:
        uow.session.execute(
            insert(IdempotencyRecord.__table__).values(
                user_id=claim.user_id, key=claim.key, method="POST", path="/api/v1/x", fingerprint="f", created_at=AT
            )
        )
        uow.commit()
    return claim


def _run_snapshot(run_id: str, body: dict[str, Any]) -> dict[str, Any]:
    payload = {"id": run_id, "version": 1, "at": AT.isoformat(), "body": body, "state": "started"}
    return {"type": catalog.PAYMENT_RUN_CHANGED.name, "payload": {**payload, "created_at": AT.isoformat()}}


def _stored(db: Database, claim: Claim, run_id: str) -> tuple[Any, Any]:
    with db.uow() as uow:
        record = uow.session.get(IdempotencyRecord, (claim.user_id, claim.key))
        row = uow.session.execute(select(rm_payment_runs.c.body).where(rm_payment_runs.c.id == run_id)).first()
        return (record.status_code, record.body) if record else None, row


@pytest.fixture
def run_id(dbs: dict[str, Database]) -> Iterator[str]:
    """A run id for the test's snapshot, whose row goes again afterwards: its body is not a
    run's, and the gateway's database is the other tests' too (the run list reads every row)."""
    run_id = str(uuid.uuid4())
    yield run_id
    with dbs["gateway"].uow() as uow:
        uow.session.execute(delete(rm_payment_runs).where(rm_payment_runs.c.id == run_id))
        uow.commit()


def test_the_answer_and_its_reply_s_snapshots_are_kept_together(dbs: dict[str, Database], run_id: str) -> None:
    db = dbs["gateway"]
    claim = _claimed(db)
    claim._store(Response('{"id": "r"}', status=200), Deferred(snapshots=[_run_snapshot(run_id, {"id": run_id})]))
    answer, row = _stored(db, claim, run_id)
    assert answer == (200, '{"id": "r"}')
    assert row is not None
    assert row.body == {"id": run_id}


def test_the_answer_is_kept_when_its_snapshots_cannot_be_projected(
    dbs: dict[str, Database], run_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = dbs["gateway"]
    claim = _claimed(db)
    unstorable = _run_snapshot(run_id, {"note": "nul \u0000 in text"})  # valid JSON; PostgreSQL's jsonb refuses it
    claim._store(Response('{"id": "r"}', status=200), Deferred(snapshots=[unstorable]))
    answer, row = _stored(db, claim, run_id)
    assert answer == (200, '{"id": "r"}')
    assert row is None
    assert "could not project a reply's snapshots" in caplog.text
