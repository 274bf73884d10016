"""The gateway's Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, Response, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from services.gateway import access, problems, web
from services.gateway.accounts import Accounts
from services.gateway.api import (
    account,
    admin,
    alerts,
    approvals,
    cash,
    commands,
    dashboard,
    directory,
    floats,
    health,
    passwords,
    payment_runs,
    payments,
    reports,
    requisitions,
    security,
    session,
    system,
)
from services.gateway.api.requisitions import receipt_size_limit
from services.gateway.backlog import Backlog
from services.gateway.branches import UnknownBranch
from services.gateway.bus import Bus
from services.gateway.csrf import CsrfGuard
from services.gateway.directory import Directory
from services.gateway.json_provider import FastJSONProvider
from services.gateway.mail import Mailer
from services.gateway.passwords import Passwords
from services.gateway.ratelimits import RateLimits
from services.gateway.security import SecurityLog
from services.gateway.sessions import ServerSessionInterface, SessionStore, make_store
from shared.config import Settings, load_settings
from shared.db.engine import Database
from shared.db.types import utcnow
from shared.messaging.app import make_celery

log = logging.getLogger(__name__)


@dataclass
class GatewayContext:
    """What every request of this process shares: settings, the identity database, the bus,
    how far behind the services are, and the identity machinery (sessions, passwords, limits)."""

    settings: Settings
    db: Database
    bus: Bus
    backlog: Backlog
    clock: Callable[[], datetime]
    security: SecurityLog
    sessions: SessionStore
    accounts: Accounts
    directory: Directory
    rate_limits: RateLimits
    mailer: Mailer
    csrf_guard: CsrfGuard

    @property
    def demo_tokens(self) -> bool:
        return self.settings.identity.demo_tokens

    def warm(self) -> None:
        """Open what nearly every request needs before the first one comes: a connection of the
        database pool (20 ms, paid otherwise by someone's request) and the reply listener."""
        with self.db.engine.connect():
            pass
        self.bus.warm()


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest, answering every HTTP error as application/problem+json."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        return _answer(problems.from_http_exception(error))


BLUEPRINTS = (
    requisitions,
    approvals,
    admin,
    alerts,
    cash,
    commands,
    dashboard,
    payments,
    payment_runs,
    floats,
    reports,
    system,
    session,
    account,
    passwords,
    directory,
    security,
)


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = utcnow) -> Flask:
    """Build the gateway for the given settings (the environment's when none are given).

    ``clock`` is what sessions, lockouts and links take the time from (tests move it).
    """
    settings = settings or load_settings()
    app = Flask(__name__)
    if settings.identity.trusted_proxies:
        # Believe the client address and scheme that this many proxies in front say.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.identity.trusted_proxies,
            x_proto=settings.identity.trusted_proxies,
            x_host=settings.identity.trusted_proxies,
        )
    app.json = FastJSONProvider(app)
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
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "pettycash_session"},
                },
            },
            "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        },
    )
    db = Database(settings.database_url("gateway"))
    identity = settings.identity
    security_log = SecurityLog(db, clock)
    store = make_store(identity, db, clock)
    accounts = Accounts(db, identity, Passwords.from_settings(identity), security_log, store, clock)
    app.session_interface = ServerSessionInterface(store, identity, clock)
    app.extensions["pettycash"] = GatewayContext(
        settings=settings,
        db=db,
        bus=Bus(make_celery(settings, "gateway"), db=None if settings.embedded else db),
        backlog=Backlog(settings),
        clock=clock,
        security=security_log,
        sessions=store,
        accounts=accounts,
        directory=Directory(accounts, clock),
        rate_limits=RateLimits(identity.rate_limits, identity.rate_limit_storage_url, security_log),
        mailer=Mailer(identity.mail_from, identity.smtp_url, settings.var_dir / "mail"),
        csrf_guard=CsrfGuard(app, security_log),
    )
    api = ProblemApi(app)
    for module in BLUEPRINTS:
        api.register_blueprint(module.blp)
    app.register_blueprint(health.bp)
    app.register_blueprint(web.bp)
    app.before_request(_refuse_nul_in_url)
    app.before_request(receipt_size_limit)  # before the guard, whose CSRF check may read the form
    app.before_request(access.guard)
    app.register_error_handler(UnknownBranch, UnknownBranch.response)
    app.register_error_handler(Exception, _unhandled)
    app.after_request(_security_headers)
    access.check_declared(app)  # an endpoint without an access rule stops the start
    return app


def _refuse_nul_in_url() -> Response | None:
    """A NUL in the path or the query can never name anything; say so before any lookup."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return problems.problem(400, "invalid-request", "The URL may not contain NUL characters.")
    return None


def _unhandled(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return _answer(problems.from_http_exception(exc))
    if problems.is_outage(exc):  # the broker or the database is away: 503, never 500
        return _answer(problems.unavailable(exc))
    return _answer(problems.internal_error(exc))


def _answer(problem: Response) -> Response:
    """The problem as it is for the API; for a person at a page, the same in words, on a page."""
    wanted = request.accept_mimetypes.best_match(["application/problem+json", "application/json", "text/html"])
    if request.path.startswith("/api/") or wanted != "text/html":  # */* (scripts, curl) gets the problem
        return problem
    return web.error_page(problem)


# Pages load scripts, styles and images from this origin only, and no inline script runs; an
# API answer is data, never a document that may load anything.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(self), geolocation=(), microphone=()")
    page = response.mimetype == "text/html"
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP if page else API_CSP)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response
