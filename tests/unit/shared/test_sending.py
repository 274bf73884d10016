"""What a sent task carries: a job held back starts later; every other task at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery

from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.messaging.app import send_command


def _sent(spec: catalog.TaskSpec, payload: dict[str, Any]) -> tuple[datetime, dict[str, Any]]:
    """Send one task through an in-memory broker; when it was sent, and its message's headers."""
    app = Celery("sending-test", broker="memory://")
    envelope = Envelope(type=spec.name, payload=payload, actor=SYSTEM_ACTOR).to_dict()
    sent_at = datetime.now(UTC)
    send_command(app, spec, envelope)
    with app.connection_for_read() as connection:
        message = connection.SimpleQueue(spec.queue).get(timeout=1)
        message.ack()
    return sent_at, message.headers


def test_a_run_s_launch_is_held_until_its_authorisation_is_answered() -> None:
    sent_at, headers = _sent(catalog.LAUNCH_PAYMENT_RUN, {"run_id": str(uuid.uuid4())})
    eta = datetime.fromisoformat(headers["eta"])
    held = timedelta(seconds=catalog.LAUNCH_PAYMENT_RUN.hold_seconds)
    assert held > timedelta(0)
    assert sent_at + held <= eta < sent_at + held + timedelta(seconds=1)


def test_a_command_starts_at_once() -> None:
    _, headers = _sent(catalog.CANCEL_PAYMENT_RUN, {"run_id": str(uuid.uuid4()), "reason": "not needed"})
    assert catalog.CANCEL_PAYMENT_RUN.hold_seconds == 0
    assert headers["eta"] is None
