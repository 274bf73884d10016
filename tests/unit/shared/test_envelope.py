from __future__ import annotations

import pytest
from marshmallow import ValidationError

from shared.contracts.envelope import SYSTEM_ACTOR, Envelope, load_envelope


def test_a_caused_message_keeps_the_correlation_and_names_its_cause() -> None:
    first = Envelope(type="submit", payload={}, actor=SYSTEM_ACTOR)
    second = first.caused("Submitted", {"x": 1})
    third = second.caused("Opened", {})
    assert first.correlation_id == first.message_id
    assert second.correlation_id == third.correlation_id == first.message_id
    assert second.causation_id == first.message_id
    assert third.causation_id == second.message_id
    assert len({first.message_id, second.message_id, third.message_id}) == 3


def test_wire_form_round_trips() -> None:
    original = Envelope(type="Submitted", payload={"a": [1, 2]}, actor=SYSTEM_ACTOR).caused("Next", {"b": "c"})
    assert load_envelope(original.to_dict()) == original


@pytest.mark.parametrize("field", ["message_id", "correlation_id", "occurred_at", "actor", "payload", "type"])
def test_an_envelope_missing_a_field_is_refused(field: str) -> None:
    raw = Envelope(type="T", payload={}, actor=SYSTEM_ACTOR).to_dict()
    del raw[field]
    with pytest.raises(ValidationError):
        load_envelope(raw)


def test_an_unknown_envelope_version_is_refused() -> None:
    raw = Envelope(type="T", payload={}, actor=SYSTEM_ACTOR).to_dict()
    raw["version"] = 2
    with pytest.raises(ValidationError):
        load_envelope(raw)
