"""A service's dead-letter alert: raised with each burial, cleared by the replay of the last one left."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shared.db.engine import Database
from shared.messaging import deadletter
from shared.messaging.tables import metadata, outbox


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/ledger.sqlite")
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def _bury(db: Database) -> int:
    envelope = {"message_id": str(uuid.uuid4()), "type": "Something"}
    with db.uow() as uow:
        deadletter.bury_and_alert(uow, "ledger", "ledger.handle_event", envelope, "permanent: broken", 1)
        uow.commit()
    with db.uow() as uow:
        return max(row["id"] for row in deadletter.list_dead_letters(uow.session))


def _emitted(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.uow() as uow:
        rows = uow.session.execute(select(outbox.c.event_type, outbox.c.envelope).order_by(outbox.c.seq)).all()
    return [(kind, envelope["payload"]) for kind, envelope in rows]


def _replay(db: Database, dead_id: int) -> dict[str, Any] | None:
    with db.uow() as uow:
        taken = deadletter.replay(uow, "ledger", dead_id)
        uow.commit()
    return taken


def test_each_burial_raises_the_services_alert(db: Database) -> None:
    _bury(db)
    _bury(db)
    raised = _emitted(db)
    assert [kind for kind, _ in raised] == ["AlertRaised", "AlertRaised"]
    assert {(p["kind"], p["subject"], p["severity"]) for _, p in raised} == {
        ("dead_letter", "dead_letters:ledger", "critical")
    }


def test_only_the_replay_of_the_last_one_left_clears_it(db: Database) -> None:
    first, second = _bury(db), _bury(db)
    assert _replay(db, first) is not None
    assert [kind for kind, _ in _emitted(db)].count("AlertCleared") == 0
    assert _replay(db, second) is not None
    cleared = [p for kind, p in _emitted(db) if kind == "AlertCleared"]
    assert len(cleared) == 1
    assert (cleared[0]["kind"], cleared[0]["subject"]) == ("dead_letter", "dead_letters:ledger")
    assert f"#{second}" in cleared[0]["note"]


def test_a_dead_letter_replayed_already_is_not_taken_and_clears_nothing(db: Database) -> None:
    dead_id = _bury(db)
    assert _replay(db, dead_id) is not None
    assert _replay(db, dead_id) is None
    assert _replay(db, dead_id + 100) is None
    assert [kind for kind, _ in _emitted(db)].count("AlertCleared") == 1
