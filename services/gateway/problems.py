"""RFC 9457 problem responses: every error the API returns has this shape."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from flask import Response
from kombu.exceptions import OperationalError as BrokerOperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# What a client is told to wait before retrying while a backing service is away: long enough
# for a restart or a failover to finish, short enough that nobody gives up.
RETRY_AFTER_SECONDS = 5

# Errors meaning "a backing service cannot be reached now", not "the request is wrong" nor
# "the code is wrong": the broker or result store (Redis, through redis-py or kombu) and the
# gateway database (SQLAlchemy wraps the driver's connection errors as OperationalError or
# InterfaceError; TimeoutError is an exhausted connection pool).
_OUTAGES: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerOperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
    ConnectionError,
)


WWW_AUTHENTICATE = 'Bearer realm="pettycash"'


def problem(status: int, code: str, detail: str, **extra: Any) -> Response:
    """A problem+json response; ``code`` is a stable machine-readable slug."""
    body = {"type": code, "title": code.replace("-", " "), "status": status, "detail": detail, **extra}
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    if status == 401:  # RFC 9110: a 401 names the scheme to authenticate with
        response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def from_reply(reply: dict[str, Any]) -> Response:
    """The HTTP answer for a service's refusal."""
    p = dict(reply["problem"])
    status = int(reply["status"])
    return problem(status, p.pop("type"), p.pop("detail"), **{k: v for k, v in p.items() if k != "title"})


# The problem type of each HTTP error status werkzeug or flask-smorest raises.
SLUG_OF_STATUS = {
    400: "invalid-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "state-conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "rule-violated",
    429: "rate-limited",
}


def from_http_exception(exc: HTTPException) -> Response:
    """Turn werkzeug/webargs/flask-smorest errors into problems, keeping field messages."""
    status = exc.code or 500
    data = getattr(exc, "data", None)
    data = data if isinstance(data, dict) else {}
    errors = _field_errors(data)
    detail = data.get("message") or exc.description
    if errors and status == 400:
        detail = "The request body is not valid; see errors."
    response = problem(
        status, SLUG_OF_STATUS.get(status, "error"), str(detail), **({"errors": errors} if errors else {})
    )
    for name, value in exc.get_headers():  # e.g. the Allow of a 405 (RFC 9110 requires it)
        if name.lower() != "content-type":
            response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def _field_errors(data: dict[str, Any]) -> Any:
    """webargs' field messages, which it nests by location ({"json": {...}}); the body is the only one here."""
    messages = data.get("messages")
    if not messages:
        return None
    return messages.get("json", messages) if isinstance(messages, dict) else messages


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says a backing service is unavailable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__
    return False


def unavailable(exc: BaseException) -> Response:
    """503 with ``Retry-After``: nothing is wrong with the request; a backing service is away."""
    log.warning("backing service unavailable: %s: %s", type(exc).__name__, exc)
    response = problem(
        503, "service-unavailable", "A service this request needs is unavailable right now; retry shortly."
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def internal_error(exc: Exception) -> Response:
    """Last resort: log it, say nothing about internals."""
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal-error", "Something went wrong on our side.")
