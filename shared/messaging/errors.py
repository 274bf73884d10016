"""How consumers classify failures, and the error a use case raises to refuse a request."""

from __future__ import annotations

from typing import Any

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc


class DomainError(Exception):
    """A request refused by a business rule: a definitive answer, never retried."""

    status = 422
    code = "rule-violated"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra

    def reply(self) -> dict[str, Any]:
        """The reply a command returns for this refusal (problem+json fields)."""
        return problem_reply(self.status, self.code, self.detail, **self.extra)


class NotFound(DomainError):
    status = 404
    code = "not-found"


class Conflict(DomainError):
    status = 409
    code = "state-conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


def problem_reply(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A reply carrying an RFC 9457 problem; the gateway turns it into the HTTP answer."""
    return {"status": status, "problem": {"type": code, "title": code.replace("-", " "), "detail": detail, **extra}}


def ok_reply(status: int, body: dict[str, Any], *, snapshots_of: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A successful reply. ``snapshots_of``: the snapshot events the gateway projects before it
    answers (all of what the command changed, by default; a run of a hundred payments answers
    with the run's alone, and the payments' arrive through the projector)."""
    reply: dict[str, Any] = {"status": status, "body": body}
    if snapshots_of is not None:
        reply[SNAPSHOTS_OF] = list(snapshots_of)
    return reply


# The reply's member naming the snapshot events it carries (the runtime reads and drops it).
SNAPSHOTS_OF = "snapshots_of"


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed (connection loss, lock timeout, deadlock)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)
