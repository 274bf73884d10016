"""The alert store (requisition service): raised by the owner of the fact, folded per kind and
subject while unresolved, acknowledged and resolved by people in scope, cleared by the owner
when the cause is gone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from services.requisition import alerts
from services.requisition.models import Alert
from shared.contracts import catalog
from shared.messaging.errors import DomainError
from tests.factories import ALICE, BOB, FIONA, MARY, MSA_01, NBO_CBD, TOM, command, event
from tests.usecase.conftest import Harness

SUBJECT = f"float:{NBO_CBD.id}:KES"


def raise_alert(uc: Harness, kind: str = "float_low", subject: str = SUBJECT, **extra: Any) -> None:
    payload = {
        "kind": kind,
        "severity": extra.pop("severity", "warning"),
        "message": extra.pop("message", "NBO-CBD float: Ksh 19,000 available, below its reorder level."),
        "subject": subject,
        "branch_id": extra.pop("branch_id", NBO_CBD.id),
        "region_id": extra.pop("region_id", NBO_CBD.region_id),
        "source": "ledger",
        **extra,
    }
    uc.run(alerts.on_alert_raised, event(catalog.ALERT_RAISED, payload))


def the_alerts(uc: Harness) -> list[Alert]:
    return uc.scalars(select(Alert).order_by(Alert.id))


def test_a_second_alert_of_a_kind_and_subject_folds_into_the_open_one(requisition_uc: Harness) -> None:
    raise_alert(requisition_uc)
    first = requisition_uc.snapshot("AlertRecorded", the_alerts(requisition_uc)[0].id)
    assert (first["version"], first["status"], first["body"]["count"]) == (1, "open", 1)
    raise_alert(requisition_uc, severity="critical", message="Lower still.")
    raise_alert(requisition_uc, kind="float_critical", severity="critical")  # another kind: its own
    [low, critical] = the_alerts(requisition_uc)
    assert (low.count, low.severity, low.message, low.status) == (2, "critical", "Lower still.", "open")
    assert low.last_seen_at >= low.raised_at
    assert (critical.kind, critical.count) == ("float_critical", 1)


def test_an_alert_is_acknowledged_then_resolved_with_a_note_and_a_new_one_starts_after(
    requisition_uc: Harness,
) -> None:
    raise_alert(requisition_uc)
    [alert] = the_alerts(requisition_uc)
    acked = requisition_uc.run(
        alerts.acknowledge_alert, command(catalog.ACKNOWLEDGE_ALERT, {"id": alert.id, "note": ""}, TOM)
    )
    assert (acked["body"]["status"], acked["body"]["acknowledged_by"]) == ("acknowledged", TOM.user_id)
    with pytest.raises(DomainError, match="needs a note"):
        requisition_uc.run(alerts.resolve_alert, command(catalog.RESOLVE_ALERT, {"id": alert.id, "note": " "}, TOM))
    done = requisition_uc.run(
        alerts.resolve_alert, command(catalog.RESOLVE_ALERT, {"id": alert.id, "note": "Topped up by hand"}, FIONA)
    )
    assert (done["body"]["status"], done["body"]["resolution_note"]) == ("resolved", "Topped up by hand")
    with pytest.raises(DomainError, match="resolved already"):
        requisition_uc.run(alerts.acknowledge_alert, command(catalog.ACKNOWLEDGE_ALERT, {"id": alert.id}, TOM))
    raise_alert(requisition_uc)  # the same cause again, after it was resolved: a new alert
    assert [(a.status, a.count) for a in the_alerts(requisition_uc)] == [("resolved", 1), ("open", 1)]


def test_an_alert_resolves_itself_when_its_owner_says_the_cause_is_gone(requisition_uc: Harness) -> None:
    raise_alert(requisition_uc)
    cleared = {"kind": "float_low", "subject": SUBJECT, "note": "Back above its reorder level."}
    requisition_uc.run(alerts.on_alert_cleared, event(catalog.ALERT_CLEARED, cleared))
    [alert] = the_alerts(requisition_uc)
    assert (alert.status, alert.resolved_by, alert.resolution_note) == ("resolved", "system", cleared["note"])
    assert requisition_uc.snapshot("AlertRecorded", alert.id)["status"] == "resolved"
    requisition_uc.run(alerts.on_alert_cleared, event(catalog.ALERT_CLEARED, cleared))  # nothing left to clear
    assert requisition_uc.emitted(snapshots=True) == []


def test_a_clear_decided_before_a_raise_that_arrived_first_leaves_the_alert_open(requisition_uc: Harness) -> None:
    raise_alert(requisition_uc)
    cleared = {"kind": "float_low", "subject": SUBJECT, "note": "Back above its reorder level."}
    decided = event(catalog.ALERT_CLEARED, cleared)  # the owner decides the cause is gone...
    raise_alert(requisition_uc)  # ...then sees it again, and that raise is delivered first
    requisition_uc.run(alerts.on_alert_cleared, decided)
    [alert] = the_alerts(requisition_uc)
    assert (alert.status, alert.count) == ("open", 2)
    requisition_uc.run(alerts.on_alert_cleared, event(catalog.ALERT_CLEARED, cleared))  # a later clear does
    assert the_alerts(requisition_uc)[0].status == "resolved"


def test_only_people_in_scope_with_a_handling_role_act_on_an_alert(requisition_uc: Harness) -> None:
    raise_alert(requisition_uc)
    [alert] = the_alerts(requisition_uc)
    with pytest.raises(DomainError, match="handle alerts"):
        requisition_uc.run(alerts.acknowledge_alert, command(catalog.ACKNOWLEDGE_ALERT, {"id": alert.id}, ALICE))
    with pytest.raises(DomainError, match="No such alert"):  # Mombasa's manager: not their branch
        requisition_uc.run(alerts.acknowledge_alert, command(catalog.ACKNOWLEDGE_ALERT, {"id": alert.id}, MARY))
    assert MSA_01.id != NBO_CBD.id
    acked = requisition_uc.run(alerts.acknowledge_alert, command(catalog.ACKNOWLEDGE_ALERT, {"id": alert.id}, BOB))
    assert acked["body"]["status"] == "acknowledged"
