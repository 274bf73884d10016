"""The versioned envelope every message travels in."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, post_load, validate

from shared.contracts import instances

ENVELOPE_VERSION = 1


@dataclass(frozen=True)
class Actor:
    """Who asked: the gateway fills this from the authenticated user; services check it again.

    Sets, not lists: every reader asks membership (``"admin" in actor.roles``) and order has
    no meaning. The wire form (:meth:`to_dict`) keeps today's keys and sorted lists, so
    messages already in queues, outboxes, inboxes and dead letters still load.
    """

    user_id: str
    username: str
    roles: frozenset[str] = frozenset()
    branch_ids: frozenset[str] = frozenset()
    region_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Keep frozensets whatever iterable a caller hands in (a list from JSON, a set), so an
        # actor stays hashable and equal to its own round trip; a bare string would quietly
        # become a set of letters, so it is refused.
        for name in ("roles", "branch_ids", "region_ids"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"Actor.{name} must be a collection of strings, not a string")
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        """An actor from its wire form; ``ValidationError`` (a permanent message error) if malformed."""
        actor: Actor = instances.schema(ActorSchema).load(dict(data))
        return actor

    def to_dict(self) -> dict[str, Any]:
        """The wire form (JSON-safe): the same keys and sorted lists as ever."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "roles": sorted(self.roles),
            "branch_ids": sorted(self.branch_ids),
            "region_ids": sorted(self.region_ids),
        }


class ActorSchema(Schema):
    """Strict reader of an actor's wire form; unknown keys are ignored, as they always were."""

    class Meta:
        unknown = EXCLUDE

    user_id = fields.String(required=True)
    username = fields.String(required=True)
    roles = fields.List(fields.String(), load_default=list)
    branch_ids = fields.List(fields.String(), load_default=list)
    region_ids = fields.List(fields.String(), load_default=list)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Actor:
        return Actor(
            user_id=data["user_id"],
            username=data["username"],
            roles=frozenset(data["roles"]),
            branch_ids=frozenset(data["branch_ids"]),
            region_ids=frozenset(data["region_ids"]),
        )


SYSTEM_ACTOR = Actor(user_id="system", username="system", roles=frozenset({"system"}))


@dataclass(frozen=True)
class Envelope:
    """Metadata around a payload: what it is, why it exists, who caused it, and when."""

    type: str
    payload: dict[str, Any]
    actor: Actor
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str = ""
    causation_id: str | None = None
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    version: int = ENVELOPE_VERSION

    def __post_init__(self) -> None:
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.message_id)
        if not isinstance(self.actor, Actor):
            # A wire-form mapping is accepted (and validated) so tests and tools can write an
            # actor as the JSON they would send; code reads ``envelope.actor`` as an Actor.
            object.__setattr__(self, "actor", Actor.from_dict(self.actor))

    def caused(self, type_: str, payload: dict[str, Any], actor: Actor | None = None) -> Envelope:
        """A new message caused by this one: same correlation id, this one as its cause."""
        return Envelope(
            type=type_,
            payload=payload,
            actor=self.actor if actor is None else actor,
            correlation_id=self.correlation_id,
            causation_id=self.message_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form (JSON-safe)."""
        return {
            "version": self.version,
            "type": self.type,
            "message_id": self.message_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "occurred_at": self.occurred_at,
            "actor": self.actor.to_dict(),
            "payload": self.payload,
        }


class EnvelopeSchema(Schema):
    """Strict reader of the wire form; a message that fails it is poison, not a retry."""

    version = fields.Integer(required=True, validate=validate.Equal(ENVELOPE_VERSION))
    type = fields.String(required=True)
    message_id = fields.UUID(required=True)
    correlation_id = fields.UUID(required=True)
    causation_id = fields.UUID(allow_none=True, load_default=None)
    occurred_at = fields.AwareDateTime(required=True)
    actor = fields.Nested(ActorSchema, required=True)
    payload = fields.Dict(required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Envelope:
        return Envelope(
            type=data["type"],
            payload=data["payload"],
            actor=data["actor"],
            message_id=str(data["message_id"]),
            correlation_id=str(data["correlation_id"]),
            causation_id=str(data["causation_id"]) if data["causation_id"] else None,
            occurred_at=data["occurred_at"].isoformat(),
            version=data["version"],
        )


def load_envelope(raw: dict[str, Any]) -> Envelope:
    """Parse and validate an envelope received from the broker."""
    envelope: Envelope = instances.schema(EnvelopeSchema).load(raw)
    return envelope
