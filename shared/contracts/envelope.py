"""The versioned envelope every message travels in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, post_load, validate

ENVELOPE_VERSION = 1


class ActorSchema(Schema):
    """Who asked: the gateway fills this from the authenticated user."""

    class Meta:
        unknown = EXCLUDE

    user_id = fields.String(required=True)
    username = fields.String(required=True)
    roles = fields.List(fields.String(), load_default=list)
    branch_ids = fields.List(fields.String(), load_default=list)
    region_ids = fields.List(fields.String(), load_default=list)


SYSTEM_ACTOR: dict[str, Any] = {
    "user_id": "system",
    "username": "system",
    "roles": ["system"],
    "branch_ids": [],
    "region_ids": [],
}


@dataclass(frozen=True)
class Envelope:
    """Metadata around a payload: what it is, why it exists, who caused it, and when."""

    type: str
    payload: dict[str, Any]
    actor: dict[str, Any]
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str = ""
    causation_id: str | None = None
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    version: int = ENVELOPE_VERSION

    def __post_init__(self) -> None:
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.message_id)

    def caused(self, type_: str, payload: dict[str, Any], actor: dict[str, Any] | None = None) -> Envelope:
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
            "actor": self.actor,
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
    envelope: Envelope = EnvelopeSchema().load(raw)
    return envelope
