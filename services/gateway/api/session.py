"""``/api/v1/session``: sign in (password, then a second factor for the privileged roles), see
the session, sign out; ``/api/v1/sessions``: sign out everywhere.

A sign-in answers with the session cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure`` over
TLS) and the session's CSRF token, which every state-changing request on that cookie must
send as ``X-CSRFToken``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, g, session
from flask.views import MethodView

from services.gateway import csrf, problems
from services.gateway.access import permits, public
from services.gateway.accounts import Refused
from services.gateway.api import RETRY_AFTER_HEADER, Blueprint, ctx
from services.gateway.api.replies import Behind, call
from services.gateway.auth import current_principal, resolve_principal
from services.gateway.identity_schemas import SecondFactorSchema, SessionSchema, SignedOutSchema, SignInSchema
from services.gateway.security import EventType, client_address
from services.gateway.sessions import ServerSession, Stage
from shared.contracts import catalog
from shared.contracts.permissions import Action

blp = Blueprint("session", __name__, url_prefix="/api/v1", description="Signing in and out")

PENDING = (Stage.SECOND_FACTOR, Stage.ENROL)
EVERY_STAGE = (*PENDING, Stage.SIGNED_IN)
NEXT = {Stage.SECOND_FACTOR: "second-factor", Stage.ENROL: "enrol"}


def refused(exc: Refused) -> Response:
    """A use case's refusal as a problem (with ``Retry-After`` when it says when to come back)."""
    response = problems.problem(exc.status, exc.code, exc.detail, **exc.extra)
    if "retry_after" in exc.extra:
        response.headers["Retry-After"] = str(exc.extra["retry_after"])
    return response


def web_session() -> ServerSession:
    """This request's server-side session."""
    assert isinstance(session, ServerSession)
    return session


def session_body() -> dict[str, Any]:
    """The session as ``GET /api/v1/session`` shows it."""
    principal = resolve_principal()
    current = web_session()
    stage = principal.stage if principal is not None else Stage.ANONYMOUS
    user = None
    if principal is not None:
        user = {
            "id": principal.actor.user_id,
            "username": principal.actor.username,
            "roles": sorted(principal.actor.roles),
        }
    expires = None
    if principal is not None and principal.via == "session":
        idle = ctx().settings.identity.session_idle_seconds
        expires = (ctx().clock() + timedelta(seconds=idle)).isoformat()
    return {
        "signed_in": stage == Stage.SIGNED_IN,
        "stage": stage,
        "next": NEXT.get(stage),
        "csrf_token": csrf.token() if current is not None else "",
        "user": user,
        "expires_at": expires,
    }


def begin(user_id: str, stage: str) -> None:
    """Start the signed-in (or part-way) session: a new id, nothing of the old one kept."""
    web_session().begin(user_id, stage, ctx().clock())
    g.pop("principal", None)


def complete_sign_in() -> None:
    """The second factor is given (or enrolled): this session is signed in from now on."""
    web_session().advance(Stage.SIGNED_IN, ctx().clock())
    g.pop("principal", None)  # authenticated at the earlier stage; resolved again when asked


def password_sign_in(username: str, password: str) -> Response | None:
    """Check a username and password within the limits, and begin the session (None), or the
    refusal to answer with (the API's and the sign-in page's one path)."""
    context = ctx()
    login = username.strip().lower()
    for rule, key in (("sign_in_address", client_address() or "-"), ("sign_in_account", login)):
        limited = context.rate_limits.check(rule, key, what="sign-in attempts")
        if limited is not None:
            return limited
    try:
        signed = context.accounts.sign_in(username, password)
    except Refused as exc:
        return refused(exc)
    begin(signed.user_id, signed.stage)
    return None


@blp.route("/session")
class SignIn(MethodView):
    @public
    @blp.response(200, SessionSchema)
    def get(self) -> Any:
        """This browser's session: signed in or not, the next step of a sign-in, and its CSRF token."""
        return session_body()

    @public
    @blp.arguments(SignInSchema)
    @blp.response(200, SessionSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(401, "The username or password is wrong")
    @blp.problem(403, "A form or a call on our cookie without its CSRF token")
    @blp.problem(429, "Too many attempts, or the account is locked", headers={"Retry-After": RETRY_AFTER_HEADER})
    def post(self, data: dict[str, Any]) -> Any:
        """Sign in with a username (or e-mail address) and password.

        The privileged roles (treasury, finance, CFO, admin) then give a code from their
        authenticator (``POST /api/v1/session/second-factor``), or enrol one first
        (``POST /api/v1/otp/enrolment`` and ``/otp/activation``); ``next`` says which.
        """
        refusal = password_sign_in(data["username"], data["password"])
        return refusal if refusal is not None else session_body()

    @permits(Action.USE_OWN_ACCOUNT, stages=EVERY_STAGE)
    @blp.response(200, SignedOutSchema)
    def delete(self) -> Any:
        """Sign out of this session."""
        principal = current_principal()
        context = ctx()
        context.security.record(
            EventType.SIGNED_OUT, actor=principal.actor, subject=(principal.actor.user_id, principal.actor.username)
        )
        if principal.via == "session":
            web_session().end()
            return {"sessions_ended": 1}
        return {"sessions_ended": 0}


@blp.route("/session/second-factor")
class SecondFactor(MethodView):
    @permits(Action.USE_OWN_ACCOUNT, stages=(Stage.SECOND_FACTOR,))
    @blp.arguments(SecondFactorSchema)
    @blp.response(200, SessionSchema)
    @blp.problem(400, "Malformed body, or neither a code nor a recovery code")
    @blp.problem(409, "The code was used already, or no authenticator is active")
    @blp.problem(422, "The code or recovery code is not valid")
    @blp.problem(429, "Too many codes, or locked out", headers={"Retry-After": RETRY_AFTER_HEADER})
    def post(self, data: dict[str, Any]) -> Any:
        """Finish signing in with a code from your authenticator, or with a recovery code."""
        if bool(data.get("code")) == bool(data.get("recovery_code")):
            return problems.problem(400, "invalid-request", "Send either a code or a recovery code.")
        refusal = finish_second_factor(data.get("code") or "", data.get("recovery_code") or "")
        return refusal if refusal is not None else session_body()


def finish_second_factor(code: str, recovery_code: str) -> Response | None:
    """Check the code (or the recovery code, when given) within the limit and complete the
    sign-in (None), or the refusal (the API's and the code page's one path)."""
    principal = current_principal()
    context = ctx()
    limited = context.rate_limits.check("one_time_code", principal.actor.user_id, what="codes")
    if limited is not None:
        return limited
    if recovery_code:
        try:
            context.accounts.use_recovery_code(principal.actor, recovery_code)
        except Refused as exc:
            return refused(exc)
    else:
        answer = verify_code(code)
        if answer is not None:
            return answer
    context.accounts.second_factor_passed(principal.actor, "recovery-code" if recovery_code else "authenticator")
    complete_sign_in()
    return None


def verify_code(code: str) -> Response | None:
    """Ask the payment service (which keeps the authenticator) whether ``code`` is right now;
    None if it is, else the answer to give (its refusal, or 503 while it is slow or behind)."""
    principal = current_principal()
    context = ctx()
    try:
        _message_id, reply = call(catalog.VERIFY_SECOND_FACTOR, {"code": code}, principal.actor)
    except Behind as behind:
        return behind.response()
    if reply is None:
        answer = problems.problem(
            503, "service-unavailable", "Your code could not be checked in time; wait for the next one and retry."
        )
        answer.headers["Retry-After"] = str(problems.RETRY_AFTER_SECONDS)
        return answer
    if reply["status"] >= 400:
        context.accounts.second_factor_failed(principal.actor, str(reply.get("problem", {}).get("type")))
        answer = problems.from_reply(reply)
        retry_after = reply.get("problem", {}).get("retry_after")
        if retry_after is not None:
            answer.headers["Retry-After"] = str(retry_after)
        return answer
    return None


@blp.route("/sessions")
class Sessions(MethodView):
    @permits(Action.USE_OWN_ACCOUNT, stages=EVERY_STAGE)
    @blp.response(200, SignedOutSchema)
    def delete(self) -> Any:
        """Sign out everywhere: every session of yours ends, this one included (API tokens stay)."""
        principal = current_principal()
        ended = ctx().accounts.sign_out_everywhere(principal.actor)
        if principal.via == "session":
            web_session().end()
        return {"sessions_ended": ended}
