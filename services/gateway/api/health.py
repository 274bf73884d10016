"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from services.gateway.access import public
from services.gateway.api import ctx

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> Response:
    """The process is up (liveness: touches nothing else, so an outage elsewhere never restarts it)."""
    return jsonify(status="ok")


@bp.get("/readyz")
@public
def readyz() -> tuple[Response, int]:
    """The gateway database and the broker (and the reply store, if apart) answer; 503, and which, if not."""
    context = ctx()

    def database() -> None:
        with context.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    checks = {"database": _check(database), "broker": _check(context.bus.ping_broker)}
    if context.settings.result_backend != context.settings.broker_url:  # replies kept elsewhere: check there too
        checks["results"] = _check(context.bus.ping_results)
    ready = all(v == "ok" for v in checks.values())
    response = jsonify(status="ready" if ready else "not-ready", checks=checks)
    if not ready:
        response.headers["Retry-After"] = "5"
    return response, 200 if ready else 503


def _check(probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means not ready; say which
        return f"error: {type(exc).__name__}"
    return "ok"
