"""The tier's own promise: every use-case test starts from the empty migrated database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from services.requisition import service
from services.requisition.models import Requisition
from shared.contracts.catalog import SUBMIT_REQUISITION
from shared.db.engine import Database
from tests.factories import ALICE, command, submission
from tests.support import scalar

# Written by the first of the two tests below, looked for by the second.
WRITTEN: list[uuid.UUID] = []


def requisitions(uc: Any) -> int:
    return int(uc.scalar(select(func.count()).select_from(Requisition)))


def test_what_a_test_writes_is_rolled_back_when_it_ends(
    open_harness: Callable[[str], Any], dbs: dict[str, Database]
) -> None:
    with open_harness("requisition") as first:
        reply = first.run(service.submit_requisition, command(SUBMIT_REQUISITION, submission(), ALICE))
        rid = uuid.UUID(reply["body"]["id"])
        assert first.get(Requisition, rid).status == "submitted"  # committed, as far as the test sees
        # ...but only inside the test's outer transaction: another connection sees nothing.
        assert scalar(dbs["requisition"], "SELECT count(*) FROM requisitions WHERE id = :i", i=rid) == 0
    with open_harness("requisition") as second:
        assert second.get(Requisition, rid) is None
        assert requisitions(second) == 0


def test_a_row_written_by_one_test(requisition_uc: Any) -> None:
    reply = requisition_uc.run(service.submit_requisition, command(SUBMIT_REQUISITION, submission(), ALICE))
    WRITTEN.append(uuid.UUID(reply["body"]["id"]))
    assert requisitions(requisition_uc) == 1


def test_is_absent_in_the_next(requisition_uc: Any) -> None:
    assert requisitions(requisition_uc) == 0
    for rid in WRITTEN:
        assert requisition_uc.get(Requisition, rid) is None
