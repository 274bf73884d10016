"""``/api/v1/account``: one's own account: who I am, my password, my recovery codes, my second
factor, my personal API tokens. Changing a credential needs a signed-in session (not a token)
and the current password (and, for the second factor, a code): the step-up."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from flask.views import MethodView
from sqlalchemy import select

from services.gateway import problems
from services.gateway.access import permits
from services.gateway.accounts import Refused
from services.gateway.api import Blueprint, ctx
from services.gateway.api.replies import Behind, call
from services.gateway.api.session import refused, verify_code, web_session
from services.gateway.auth import SESSION, current_principal
from services.gateway.identity_schemas import (
    NewTokenSchema,
    OwnAccountSchema,
    PasswordChangeSchema,
    RecoveryCodesSchema,
    StepUpSchema,
    TokenCreateSchema,
    TokenListSchema,
)
from services.gateway.models import User
from services.gateway.readmodels import rm_authenticators
from services.gateway.security import EventType
from shared.contracts import catalog
from shared.contracts.permissions import Action
from shared.contracts.roles import SECOND_FACTOR_ROLES

blp = Blueprint("account", __name__, url_prefix="/api/v1/account", description="Your own account")


def own_account() -> dict[str, Any]:
    """The signed-in user as ``GET /api/v1/account`` shows them."""
    actor = current_principal().actor
    context = ctx()
    with context.db.uow() as uow:
        user = uow.session.get_one(User, uuid.UUID(actor.user_id))
        status = uow.session.scalar(select(rm_authenticators.c.status).where(rm_authenticators.c.id == actor.user_id))
        body = {
            "id": str(user.id),
            "username": user.username,
            "full_name": user.full_name,
            "email": user.email,
            "roles": sorted(r.role for r in user.roles),
            "branches": [
                {"id": str(m.branch.id), "code": m.branch.code, "name": m.branch.name}
                for m in sorted(user.memberships, key=lambda m: m.branch.code)
            ],
            "regions": [
                {"id": str(m.region.id), "code": m.region.code, "name": m.region.name}
                for m in sorted(user.region_memberships, key=lambda m: m.region.code)
            ],
            "second_factor_required": bool(actor.roles & SECOND_FACTOR_ROLES),
            "second_factor": status or "none",
            "password_changed_at": user.password_changed_at.isoformat() if user.password_changed_at else None,
        }
    body["recovery_codes_left"] = context.accounts.recovery_codes_left(actor.user_id)
    return body


def step_up(data: dict[str, Any]) -> Response | None:
    """The password, and a code or recovery code from the second factor; None if both are right."""
    principal = current_principal()
    context = ctx()
    limited = context.rate_limits.check("one_time_code", principal.actor.user_id, what="attempts")
    if limited is not None:
        return limited
    try:
        context.accounts.check_password(principal.actor, data["password"])
        if data.get("recovery_code"):
            context.accounts.use_recovery_code(principal.actor, data["recovery_code"])
            return None
    except Refused as exc:
        return refused(exc)
    if not data.get("code"):
        return problems.problem(400, "invalid-request", "Send a code from your authenticator, or a recovery code.")
    return verify_code(data["code"])


@blp.route("")
class Account(MethodView):
    @permits(Action.USE_OWN_ACCOUNT)
    @blp.response(200, OwnAccountSchema)
    def get(self) -> Any:
        """Who you are: roles, branches, regions, your second factor and recovery codes left."""
        return own_account()


@blp.route("/password")
class Password(MethodView):
    @permits(Action.USE_OWN_ACCOUNT, sessions_only=True)
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, OwnAccountSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "The current password is not right, or this needs a signed-in session")
    @blp.problem(422, "The new password is too weak")
    @blp.problem(429, "Too many attempts")
    def post(self, data: dict[str, Any]) -> Any:
        """Change your password (give the current one); your other sessions end."""
        refusal = change_own_password(data["current_password"], data["new_password"])
        return refusal if refusal is not None else own_account()


def change_own_password(current: str, new: str) -> Response | None:
    """Change the caller's password (None), or the refusal; this session lives on, the others end
    (the API's and the password page's one path)."""
    principal = current_principal()
    context = ctx()
    limited = context.rate_limits.check("sign_in_account", principal.actor.username, what="attempts")
    if limited is not None:
        return limited
    try:
        context.accounts.change_password(principal.actor, current, new)
    except Refused as exc:
        return refused(exc)
    if principal.via == SESSION:
        web_session().renew(context.clock())
    return None


@blp.route("/recovery-codes")
class RecoveryCodes(MethodView):
    @permits(Action.ENROL_SECOND_FACTOR, sessions_only=True)
    @blp.arguments(StepUpSchema)
    @blp.response(201, RecoveryCodesSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "The password is not right, not a second-factor role, or this needs a signed-in session")
    @blp.problem(409, "No active authenticator, or the code was used already")
    @blp.problem(422, "The code is not valid")
    @blp.problem(429, "Too many attempts")
    def post(self, data: dict[str, Any]) -> Any:
        """New recovery codes (the old ones stop working), shown this once."""
        answer = step_up(data)
        if answer is not None:
            return answer
        return {"codes": ctx().accounts.new_recovery_codes(current_principal().actor)}, 201


@blp.route("/second-factor/reset")
class SecondFactorReset(MethodView):
    @permits(Action.ENROL_SECOND_FACTOR, sessions_only=True)
    @blp.arguments(StepUpSchema)
    @blp.response(200, OwnAccountSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "The password is not right, not a second-factor role, or this needs a signed-in session")
    @blp.problem(404, "No authenticator to reset")
    @blp.problem(409, "The code was used already")
    @blp.problem(422, "The code is not valid")
    @blp.problem(429, "Too many attempts")
    def post(self, data: dict[str, Any]) -> Any:
        """Forget your authenticator (a new phone): enrol a new one next."""
        answer = step_up(data)
        if answer is not None:
            return answer
        return reset_authenticator(current_principal().actor.user_id) or own_account()


def reset_authenticator(user_id: str) -> Response | None:
    """Have the payment service forget a user's authenticator; None once it has, else the answer."""
    principal = current_principal()
    context = ctx()
    try:
        message_id, reply = call(catalog.RESET_AUTHENTICATOR, {"user_id": user_id}, principal.actor)
    except Behind as behind:
        return behind.response()
    if reply is None:
        from services.gateway.api.commands import accepted

        return accepted(message_id, principal.actor, "authenticator")
    from services.gateway.readmodels import apply_reply_snapshots

    apply_reply_snapshots(context.db.uow, reply.get("snapshots") or [])
    if reply["status"] >= 400:
        return problems.from_reply(reply)
    context.security.record(EventType.SECOND_FACTOR_RESET, actor=principal.actor, subject=(user_id, None))
    return None


@blp.route("/tokens")
class Tokens(MethodView):
    @permits(Action.USE_OWN_ACCOUNT)
    @blp.response(200, TokenListSchema)
    def get(self) -> Any:
        """Your API tokens (never their secrets)."""
        return {"items": ctx().accounts.tokens(current_principal().actor.user_id)}

    @permits(Action.USE_OWN_ACCOUNT, sessions_only=True)
    @blp.arguments(TokenCreateSchema)
    @blp.response(201, NewTokenSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "This needs a signed-in session")
    def post(self, data: dict[str, Any]) -> Any:
        """A personal API token for scripts: shown this once; optionally read-only, optionally expiring."""
        secret, body = ctx().accounts.create_token(
            current_principal().actor,
            data["name"],
            read_only=data["read_only"],
            expires_in_days=data["expires_in_days"],
        )
        return {**body, "token": secret}, 201


@blp.route("/tokens/<uuid:token_id>")
class Token(MethodView):
    @permits(Action.USE_OWN_ACCOUNT)
    @blp.response(204)
    @blp.problem(404, "No such token of yours")
    def delete(self, token_id: uuid.UUID) -> Any:
        """Revoke one of your tokens (it stops working at once)."""
        principal = current_principal()
        try:
            ctx().accounts.revoke_token(principal.actor, principal.actor.user_id, token_id)
        except Refused as exc:
            return refused(exc)
        return None
