"""The gateway's Flask application factory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from services.gateway import problems
from services.gateway.api import admin, approvals, commands, floats, health, payments, requisitions, system
from services.gateway.backlog import Backlog
from services.gateway.branches import UnknownBranch
from services.gateway.bus import Bus
from shared.config import Settings, load_settings
from shared.db.engine import Database
from shared.messaging.app import make_celery

log = logging.getLogger(__name__)


@dataclass
class GatewayContext:
    """What every request of this process shares: settings, the identity database, the bus,
    and how far behind the services are."""

    settings: Settings
    db: Database
    bus: Bus
    backlog: Backlog


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest, answering every HTTP error as application/problem+json."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        return problems.from_http_exception(error)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the gateway for the given settings (the environment's when none are given)."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=1024 * 1024,
        API_TITLE="Petty cash API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearerAuth": []}],
        },
    )
    db = Database(settings.database_url("gateway"))
    app.extensions["pettycash"] = GatewayContext(
        settings=settings,
        db=db,
        bus=Bus(make_celery(settings, "gateway"), db=None if settings.embedded else db),
        backlog=Backlog(settings),
    )
    api = ProblemApi(app)
    api.register_blueprint(requisitions.blp)
    api.register_blueprint(approvals.blp)
    api.register_blueprint(admin.blp)
    api.register_blueprint(commands.blp)
    api.register_blueprint(payments.blp)
    api.register_blueprint(floats.blp)
    api.register_blueprint(system.blp)
    app.register_blueprint(health.bp)
    app.before_request(_refuse_nul_in_url)
    app.register_error_handler(UnknownBranch, UnknownBranch.response)
    app.register_error_handler(Exception, _unhandled)
    app.after_request(_security_headers)
    return app


def _refuse_nul_in_url() -> Response | None:
    """A NUL in the path or the query can never name anything; say so before any lookup."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return problems.problem(400, "invalid-request", "The URL may not contain NUL characters.")
    return None


def _unhandled(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return problems.from_http_exception(exc)
    if problems.is_outage(exc):  # the broker or the database is away: 503, never 500
        return problems.unavailable(exc)
    return problems.internal_error(exc)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
