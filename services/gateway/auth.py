"""Who is asking: a bearer token (scripts, personal API tokens) or a browser's session.

A request carrying an ``Authorization: Bearer`` header is judged by that token alone; any
other is judged by its session cookie. :func:`current_principal` resolves it once per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, request, session
from flask_smorest import abort

from services.gateway import identity
from services.gateway.sessions import ServerSession, Stage
from shared.contracts.envelope import Actor

TOKEN = "token"  # noqa: S105 - how a principal authenticated, not a secret
SESSION = "session"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request and what their credential allows."""

    actor: Actor
    via: str  # TOKEN or SESSION
    stage: str = Stage.SIGNED_IN  # a session's stage; tokens are always signed in
    read_only: bool = False  # a read-only personal token
    token_id: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.stage == Stage.SIGNED_IN


def bearer_token() -> str | None:
    """The bearer token of this request, if it sends one (an empty or other scheme counts as one, to refuse)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _read_identity(read: object) -> object:
    """Run one identity SELECT on the gateway database."""
    with current_app.extensions["pettycash"].db.reader() as connection:
        return read(connection)  # type: ignore[operator]


def resolve_principal() -> Principal | None:
    """Authenticate this request (once; cached on ``g``); None when it carries no valid credential."""
    if "principal" in g:
        cached: Principal | None = g.principal
        return cached
    principal: Principal | None = None
    token = bearer_token()
    context = current_app.extensions["pettycash"]
    if token is not None:
        if token:
            found = _read_identity(
                lambda s: identity.authenticate(s, token, now=context.clock(), demo_tokens=context.demo_tokens)
            )
            if isinstance(found, identity.TokenIdentity):
                principal = Principal(found.actor, TOKEN, read_only=found.read_only, token_id=found.token_id)
    elif isinstance(session, ServerSession) and session.user_id:
        began = session.at("began_at") or session.at("created_at")
        actor = _read_identity(lambda s: identity.session_actor(s, session.user_id or "", began))
        if isinstance(actor, Actor):
            principal = Principal(actor, SESSION, stage=session.stage)
        else:
            session.end()  # the user is gone or ended their sessions: this one is over too
    g.principal = principal
    return principal


def current_principal() -> Principal:
    """The authenticated caller; 401 if there is none."""
    principal = resolve_principal()
    if principal is None:
        abort(401, message=unauthenticated_message())
    return principal


def current_actor() -> Actor:
    """The authenticated actor of this request; 401 if there is none."""
    return current_principal().actor


def unauthenticated_message() -> str:
    """Why this request is not authenticated, in words."""
    token = bearer_token()
    if token is None:
        return "Sign in, or send a bearer token."
    if not token:
        return "A bearer token is required."
    return "The bearer token is unknown, expired or revoked."
