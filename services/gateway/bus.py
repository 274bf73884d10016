"""The gateway's side of the bus: send a command or query, wait briefly for its reply."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from shared.contracts.catalog import TaskSpec
from shared.contracts.envelope import Envelope
from shared.messaging.app import send_command


class Bus:
    """Sends envelopes for the gateway and polls the result backend for replies."""

    def __init__(self, app: Celery, poll_seconds: float = 0.002) -> None:
        self.app = app
        self.poll_seconds = poll_seconds

    def send(self, spec: TaskSpec, payload: dict[str, Any], actor: dict[str, Any]) -> str:
        """Send a command or query; returns its message id (also its task id)."""
        envelope = Envelope(type=spec.name, payload=payload, actor=actor)
        return send_command(self.app, spec, envelope.to_dict())

    def reply(self, message_id: str) -> dict[str, Any] | None:
        """The reply of a message, if one has arrived."""
        result = AsyncResult(message_id, app=self.app)
        if result.state == "SUCCESS":
            value: dict[str, Any] = result.result
            return value
        if result.state == "FAILURE":
            return {
                "status": 500,
                "problem": {
                    "type": "internal-error",
                    "title": "internal error",
                    "detail": "The service could not complete the request.",
                },
            }
        return None

    def wait(self, message_ids: list[str], timeout: float) -> list[dict[str, Any] | None]:
        """Replies of several messages, waiting at most ``timeout`` seconds for all of them.

        Polling (not ``AsyncResult.get``) because the Redis backend's pub/sub consumer is not
        safe to share between the gateway's threads; a poll is one GET on Redis.
        """
        deadline = time.monotonic() + timeout
        replies: list[dict[str, Any] | None] = [None] * len(message_ids)
        while True:
            for i, message_id in enumerate(message_ids):
                if replies[i] is None:
                    replies[i] = self.reply(message_id)
            if all(r is not None for r in replies) or time.monotonic() >= deadline:
                return replies
            time.sleep(self.poll_seconds)

    def ask(
        self, queries: list[tuple[TaskSpec, dict[str, Any]]], actor: dict[str, Any], timeout: float
    ) -> list[dict[str, Any] | None]:
        """Send several queries at once and wait for all; their results are then dropped from
        the backend (nobody reads a query's result twice, and Redis need not keep it an hour)."""
        ids = [self.send(spec, payload, actor) for spec, payload in queries]
        replies = self.wait(ids, timeout)
        for message_id, reply in zip(ids, replies, strict=True):
            if reply is not None:
                AsyncResult(message_id, app=self.app).forget()
        return replies

    def call(
        self, spec: TaskSpec, payload: dict[str, Any], actor: dict[str, Any], timeout: float
    ) -> tuple[str, dict[str, Any] | None]:
        """Send and wait: the message id and its reply (None if it did not come in time)."""
        message_id = self.send(spec, payload, actor)
        return message_id, self.wait([message_id], timeout)[0]
