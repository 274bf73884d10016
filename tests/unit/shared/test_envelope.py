from __future__ import annotations

import json

import pytest
from marshmallow import ValidationError

from shared.contracts.envelope import SYSTEM_ACTOR, Actor, Envelope, load_envelope


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


# -- the actor ------------------------------------------------------------------------

# An envelope as the gateway has put it on the wire (and in outbox, inbox and dead-letter
# rows) since the actor was a dict: these exact bytes must keep loading and re-serialising.
TODAYS_WIRE_FORM = {
    "version": 1,
    "type": "requisition.submit_requisition",
    "message_id": "6f1c2f4e-5a0b-4c36-9d5e-0c1f5b7a9e21",
    "correlation_id": "6f1c2f4e-5a0b-4c36-9d5e-0c1f5b7a9e21",
    "causation_id": None,
    "occurred_at": "2026-11-02T08:15:00.123456+00:00",
    "actor": {
        "user_id": "0b9d7c1e-3f7a-4e55-a2a0-5d3c9c8e7f10",
        "username": "rita",
        "roles": ["branch_manager", "regional_manager"],
        "branch_ids": ["11111111-0000-0000-0000-000000000001", "11111111-0000-0000-0000-000000000002"],
        "region_ids": ["22222222-0000-0000-0000-000000000001"],
    },
    "payload": {"id": "x"},
}


def test_an_actor_round_trips_through_its_wire_form() -> None:
    actor = Actor(
        user_id="u1",
        username="rita",
        roles=frozenset({"regional_manager", "branch_manager"}),
        branch_ids=frozenset({"b2", "b1"}),
        region_ids=frozenset({"r1"}),
    )
    wire = actor.to_dict()
    assert wire == {
        "user_id": "u1",
        "username": "rita",
        "roles": ["branch_manager", "regional_manager"],
        "branch_ids": ["b1", "b2"],
        "region_ids": ["r1"],
    }
    assert list(wire) == ["user_id", "username", "roles", "branch_ids", "region_ids"]
    assert Actor.from_dict(wire) == actor
    assert Actor.from_dict(json.loads(json.dumps(wire))) == actor


def test_todays_wire_form_loads_into_an_actor_and_serialises_to_the_same_bytes() -> None:
    envelope = load_envelope(json.loads(json.dumps(TODAYS_WIRE_FORM)))
    assert envelope.actor == Actor(
        user_id="0b9d7c1e-3f7a-4e55-a2a0-5d3c9c8e7f10",
        username="rita",
        roles=frozenset({"branch_manager", "regional_manager"}),
        branch_ids=frozenset({"11111111-0000-0000-0000-000000000001", "11111111-0000-0000-0000-000000000002"}),
        region_ids=frozenset({"22222222-0000-0000-0000-000000000001"}),
    )
    assert "regional_manager" in envelope.actor.roles
    assert json.dumps(envelope.to_dict()) == json.dumps(TODAYS_WIRE_FORM)


def test_an_actor_with_only_the_required_keys_or_extra_ones_still_loads() -> None:
    # Hand-written messages (and older producers) left the lists out; unknown keys were ignored.
    actor = Actor.from_dict({"user_id": "system", "username": "system", "roles": ["system"], "email": "x@y"})
    assert actor == SYSTEM_ACTOR
    assert Actor.from_dict({"user_id": "u", "username": "n"}) == Actor("u", "n")


def test_an_actor_without_a_user_id_is_a_permanent_message_error() -> None:
    # The runtime dead-letters a ValidationError at once (never retries it): see
    # shared.messaging.runtime and tests/integration/test_dead_letters.py.
    raw = Envelope(type="T", payload={}, actor=SYSTEM_ACTOR).to_dict()
    del raw["actor"]["user_id"]
    with pytest.raises(ValidationError) as refused:
        load_envelope(raw)
    assert refused.value.messages == {"actor": {"user_id": ["Missing data for required field."]}}
    with pytest.raises(ValidationError):
        Actor.from_dict({"username": "nobody", "roles": ["admin"]})


@pytest.mark.parametrize(
    "actor",
    [
        {"user_id": "u", "username": "n", "roles": "admin"},
        {"user_id": "u", "username": "n", "roles": [None]},
        {"user_id": 7, "username": "n"},
        {"user_id": "u"},
    ],
)
def test_a_malformed_actor_is_refused(actor: dict[str, object]) -> None:
    raw = Envelope(type="T", payload={}, actor=SYSTEM_ACTOR).to_dict()
    raw["actor"] = actor
    with pytest.raises(ValidationError):
        load_envelope(raw)


def test_the_system_actor_wire_form_is_unchanged() -> None:
    wire = {"user_id": "system", "username": "system", "roles": ["system"], "branch_ids": [], "region_ids": []}
    assert json.dumps(SYSTEM_ACTOR.to_dict()) == json.dumps(wire)
    assert Envelope(type="T", payload={}, actor=SYSTEM_ACTOR).to_dict()["actor"] == wire


def test_an_envelope_takes_a_wire_form_actor_and_holds_an_actor() -> None:
    envelope = Envelope(type="T", payload={}, actor={"user_id": "u", "username": "n", "roles": ["staff"]})
    assert envelope.actor == Actor("u", "n", roles=frozenset({"staff"}))
    assert envelope.caused("Next", {}).actor == envelope.actor
    assert envelope.caused("Next", {}, SYSTEM_ACTOR).actor is SYSTEM_ACTOR
    with pytest.raises(ValidationError):
        Envelope(type="T", payload={}, actor={"username": "n"})


def test_an_actor_is_frozen_hashable_and_keeps_sets() -> None:
    actor = Actor("u", "n", roles=["staff", "staff"], branch_ids={"b"})  # type: ignore[arg-type]
    assert actor.roles == frozenset({"staff"})
    assert isinstance(actor.branch_ids, frozenset)
    assert hash(actor) == hash(Actor("u", "n", roles=frozenset({"staff"}), branch_ids=frozenset({"b"})))
    with pytest.raises(AttributeError):
        actor.user_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Actor("u", "n", roles="admin")  # type: ignore[arg-type]
