"""CSRF protection (Flask-WTF's CSRFProtect) for requests that ride on a session cookie.

A browser sends its cookies with any request a page elsewhere makes it send, so every
state-changing request authenticated by the session cookie must carry the session's CSRF
token: the ``csrf_token`` field of a form, or an ``X-CSRFToken`` header (the token is in
``GET /api/v1/session`` and on every page). Bearer-token calls need none: no other site can
make a browser send our ``Authorization`` header. A public form (sign-in, a password link)
is checked too, against the anonymous session its page opened, so nobody can sign a victim
into an attacker's account; a public JSON call without our cookie (a script signing in) is
not, since no page elsewhere can send JSON here without a CORS preflight we never allow.

Flask-WTF keeps the token's secret in the server-side session, so a token is good for its own
session only, and a new one begins with every sign-in.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from services.gateway import problems
from services.gateway.auth import resolve_principal
from services.gateway.security import EventType, SecurityLog
from services.gateway.sessions import COOKIE

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfGuard:
    """When and how requests are checked; refusals are 403 problems and security events."""

    def __init__(self, app: Flask, security: SecurityLog) -> None:
        app.config.update(
            WTF_CSRF_CHECK_DEFAULT=False,  # checked by services.gateway.access.guard, in its order
            WTF_CSRF_TIME_LIMIT=None,  # as long as the session lives
            WTF_CSRF_HEADERS=["X-CSRFToken", "X-CSRF-Token"],
        )
        self.csrf = CSRFProtect(app)
        self.security = security

    def check(self) -> Response | None:
        """Refuse this request unless it carries its session's CSRF token."""
        try:
            self.csrf.protect()
        except CSRFError as exc:
            principal = resolve_principal()
            self.security.record(
                EventType.CSRF_REFUSED,
                actor=principal.actor if principal else None,
                reason=exc.description,
                path=request.path,
            )
            return problems.problem(403, "csrf-failed", f"{exc.description} Reload the page and try again.")
        return None

    def check_form(self) -> Response | None:
        """A public endpoint: check a state-changing form post, or a call carrying our cookie."""
        if request.method not in UNSAFE:
            return None
        if request.mimetype in FORM_TYPES or COOKIE in request.cookies:
            return self.check()
        return None


def token() -> str:
    """This session's CSRF token (made, and the session opened, if it has none yet)."""
    return generate_csrf()  # type: ignore[no-any-return]
