"""Who may call which endpoint: every view names its action in the permission table, and one
check runs before any view, so a request is authenticated and permitted before its body or
query is looked at.

Each view method is declared with :func:`permits` (an action of
``shared.contracts.permissions``, and the session stages it serves) or :func:`public`. The
app refuses to start while any route lacks a declaration (:func:`check_declared`), so no
endpoint can be served without a rule, and the permission-matrix tests read the same
declarations off the route table.

:func:`guard` runs before every request, in this order:

1. public endpoints pass (a sign-in form's CSRF token is still checked);
2. no valid credential: 401;
3. a session part-way through sign-in reaches only the endpoints of its stage: 401;
4. a read-only personal token may only read, and credentials change only in a session: 403;
5. the actor holds none of the action's roles: 403 (a security event);
6. the caller's requests per minute (per token, or per session user): 429;
7. a state-changing request on a session cookie must carry its CSRF token: 403.

The scope (which branches) is applied where the rows are: in every read's query, and by the
service that owns a command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, redirect, request, url_for

from services.gateway import problems
from services.gateway.auth import SESSION, Principal, resolve_principal, unauthenticated_message
from services.gateway.sessions import Stage
from shared.contracts.permissions import Action, permission

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__pettycash_access__"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes Flask and flask-smorest add themselves: public by nature.
BUILT_IN_PUBLIC = frozenset({"static", "web.static", "api-docs.openapi_json"})


@dataclass(frozen=True)
class Access:
    """An endpoint's rule: its action (None: public) and the session stages it serves."""

    action: Action | None
    stages: frozenset[str] = frozenset({Stage.SIGNED_IN})
    # A change of credentials needs a person at a browser: never a token (a leaked token must
    # not be able to make more tokens or change the password).
    sessions_only: bool = False

    @property
    def public(self) -> bool:
        return self.action is None

    def describe(self) -> str:
        """The rule in words, for the OpenAPI document."""
        if self.action is None:
            return "Public: no credential needed."
        rule = permission(self.action)
        return f"Action `{self.action}`: {', '.join(sorted(rule.roles))}; scope {rule.scope}."


def _declare(fn: F, access: Access) -> F:
    setattr(fn, ATTRIBUTE, access)
    # flask-smorest reads ``_apidoc`` when it writes the OpenAPI document (see api/__init__.py).
    fn._apidoc = {**getattr(fn, "_apidoc", {}), "access": access}  # type: ignore[attr-defined]
    return fn


def permits(
    action: Action, *, stages: Iterable[str] = (Stage.SIGNED_IN,), sessions_only: bool = False
) -> Callable[[F], F]:
    """Declare the action a view takes (which session stages may call it; whether tokens may)."""
    access = Access(action, frozenset(stages), sessions_only)
    return lambda fn: _declare(fn, access)


def public(fn: F) -> F:
    """Declare a view that needs no credential (sign-in, password links, probes)."""
    return _declare(fn, Access(None, frozenset(Stage)))


def view_of(app: Flask, endpoint: str, method: str) -> Callable[..., Any] | None:
    """The function that serves ``method`` at ``endpoint`` (a MethodView's method, or the view)."""
    view = app.view_functions.get(endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    return getattr(view_class, "get" if method == "HEAD" else method.lower(), None)


def access_of(app: Flask, endpoint: str, method: str) -> Access | None:
    """The declared rule of an endpoint and method, or None if it has none."""
    if endpoint in BUILT_IN_PUBLIC:
        return Access(None)
    view = view_of(app, endpoint, method)
    return getattr(view, ATTRIBUTE, None)


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(rule, method, endpoint) of every route the app serves."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, rule.endpoint))
    return found


class UndeclaredEndpoint(RuntimeError):
    """A route serves without naming its rule: the gateway must not start."""


def check_declared(app: Flask) -> None:
    """Refuse an app with any route that has no access rule."""
    missing = [f"{method} {rule}" for rule, method, endpoint in routes(app) if access_of(app, endpoint, method) is None]
    if missing:
        raise UndeclaredEndpoint("no access rule declared for: " + ", ".join(missing))


def guard() -> Response | None:
    """The checks of this module's docstring, before any view (None: go on)."""
    if request.url_rule is None or request.endpoint is None:
        return None  # Flask answers 404 or 405 itself
    access = access_of(current_app, request.endpoint, request.method)
    if access is None:  # unreachable once check_declared passed; fail closed all the same
        return problems.problem(403, "forbidden", "This endpoint has no access rule.")
    context = current_app.extensions["pettycash"]
    if access.public:
        return context.csrf_guard.check_form()  # type: ignore[no-any-return]
    if request.blueprint == "web":
        return _for_a_person(_checked(access, context))
    return _checked(access, context)


def _checked(access: Access, context: Any) -> Response | None:
    principal = resolve_principal()
    if principal is None:  # 401 before any body or query is parsed
        return problems.problem(401, "unauthenticated", unauthenticated_message())
    for check in CHECKS:
        answer = check(access, principal, context)
        if answer is not None:
            return answer
    return None


def _for_a_person(answer: Response | None) -> Response | None:
    """At a page, a missing or half-finished sign-in goes to the page that finishes it."""
    if answer is not None and answer.status_code == 401:
        return redirect(url_for("web.home" if resolve_principal() else "web.sign_in_form"))
    return answer


def _stage(access: Access, principal: Principal, _context: Any) -> Response | None:
    if principal.stage not in access.stages:
        return problems.problem(401, "sign-in-incomplete", _next_step(principal.stage))
    return None


def _credential(access: Access, principal: Principal, _context: Any) -> Response | None:
    if principal.read_only and request.method not in SAFE_METHODS:
        return problems.problem(403, "read-only-token", "This API token may only read.")
    if access.sessions_only and principal.via != SESSION:
        return problems.problem(403, "session-required", "Sign in with your password for this; an API token may not.")
    return None


def _roles(access: Access, principal: Principal, context: Any) -> Response | None:
    rule = permission(access.action) if access.action else None
    if rule is None or rule.allows(principal.actor):
        return None
    context.security.permission_denied(principal.actor, str(access.action))
    return problems.problem(
        403, "forbidden", f"This needs one of the roles: {', '.join(sorted(rule.roles))}.", action=str(access.action)
    )


def _rate(_access: Access, principal: Principal, context: Any) -> Response | None:
    return context.rate_limits.check_caller(principal)  # type: ignore[no-any-return]


def _csrf(_access: Access, principal: Principal, context: Any) -> Response | None:
    if principal.via == SESSION and request.method not in SAFE_METHODS:
        return context.csrf_guard.check()  # type: ignore[no-any-return]
    return None


CHECKS: tuple[Callable[[Access, Principal, Any], Response | None], ...] = (_stage, _credential, _roles, _rate, _csrf)


def _next_step(stage: str) -> str:
    if stage == Stage.SECOND_FACTOR:
        return "Enter the code from your authenticator app (or a recovery code) to finish signing in."
    if stage == Stage.ENROL:
        return "Enrol an authenticator app to finish signing in: your role needs a second factor."
    return "Sign in first."
