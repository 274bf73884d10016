"""RFC 9457 problem responses: every error the API returns has this shape."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(status: int, code: str, detail: str, **extra: Any) -> Response:
    """A problem+json response; ``code`` is a stable machine-readable slug."""
    body = {"type": code, "title": code.replace("-", " "), "status": status, "detail": detail, **extra}
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def from_reply(reply: dict[str, Any]) -> Response:
    """The HTTP answer for a service's refusal."""
    p = dict(reply["problem"])
    status = int(reply["status"])
    return problem(status, p.pop("type"), p.pop("detail"), **{k: v for k, v in p.items() if k != "title"})


def from_http_exception(exc: HTTPException) -> Response:
    """Turn werkzeug/webargs/flask-smorest errors into problems, keeping field messages."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    extra: dict[str, Any] = {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if messages:
        # webargs nests messages by location ({"json": {...}}); the body is the only one here.
        extra["errors"] = messages.get("json", messages) if isinstance(messages, dict) else messages
    slug = {
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
    }.get(status, "error")
    detail = data.get("message") if isinstance(data, dict) and data.get("message") else exc.description
    if extra.get("errors") and status == 400:
        detail = "The request body is not valid; see errors."
    response = problem(status, slug, str(detail), **extra)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="pettycash"'
    return response


def internal_error(exc: Exception) -> Response:
    """Last resort: log it, say nothing about internals."""
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal-error", "Something went wrong on our side.")
