"""``/api/v1/password-reset`` and ``/api/v1/password-link``: forgotten passwords and invitations.

A reset request is answered the same way whether or not the account exists (202, same words),
so it tells nobody which usernames or addresses are known; if it does exist and has an
address, a one-time link goes there. The link (an invitation's too) sets the password once,
within its time, and ends every session of the account.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from services.gateway.access import public
from services.gateway.accounts import RESET, Refused
from services.gateway.api import RETRY_AFTER_HEADER, Blueprint, ctx
from services.gateway.api.session import refused
from services.gateway.identity_schemas import (
    PasswordLinkSchema,
    PasswordResetAcceptedSchema,
    PasswordResetRequestSchema,
    PasswordSetSchema,
)
from services.gateway.security import EventType, client_address

blp = Blueprint("passwords", __name__, url_prefix="/api/v1", description="Password links")

RESET_ANSWER = "If the account exists and has an e-mail address, a link to set a new password is on its way."


def send_link(to: str, full_name: str, purpose: str, url: str, hours: int) -> bool:
    """Mail a one-time link (an invitation, or a reset)."""
    if purpose == RESET:
        subject = "Set a new password for petty cash"
        opening = "Someone (we hope you) asked to set a new password for your petty cash account."
    else:
        subject = "You are invited to petty cash"
        opening = "An administrator made you an account in petty cash. Choose your password to start."
    body = (
        f"Hello {full_name},\n\n{opening}\n\nOpen this link within {hours} hours (it works once):\n{url}\n\n"
        "If you did not expect this, ignore this message; nothing changes until the link is used.\n"
    )
    return bool(ctx().mailer.send(to, subject, body))


def request_reset(login: str) -> None:
    """Mail a reset link to the account ``login`` names, if it exists, is active and has an address."""
    context = ctx()
    accounts = context.accounts
    with context.db.uow() as uow:
        user = accounts.find_user(uow.session, login)
        if user is None or not user.is_active or not user.email:
            context.security.add(
                uow.session, EventType.PASSWORD_RESET_REQUESTED, subject=(None, login[:64]), sent=False
            )
            uow.commit()
            return
        link = accounts.make_link(uow.session, user, RESET)
        context.security.add(uow.session, EventType.PASSWORD_RESET_REQUESTED, subject=(str(user.id), user.username))
        uow.commit()
        email, name = user.email, user.full_name
    send_link(email, name, RESET, link.url, context.settings.identity.password_reset_hours)


@blp.route("/password-reset")
class PasswordReset(MethodView):
    @public
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202, PasswordResetAcceptedSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "A form without its CSRF token")
    @blp.problem(429, "Too many requests", headers={"Retry-After": RETRY_AFTER_HEADER})
    def post(self, data: dict[str, Any]) -> Any:
        """Forgot your password? A one-time link goes to the account's e-mail address."""
        context = ctx()
        login = data["username"].strip().lower()
        for key in (f"address:{client_address() or '-'}", f"account:{login}"):
            limited = context.rate_limits.check("password_reset", key, what="password reset requests")
            if limited is not None:
                return limited
        request_reset(login)
        return {"detail": RESET_ANSWER}, 202


@blp.route("/password-link")
class PasswordLink(MethodView):
    @public
    @blp.arguments(PasswordLinkSchema)
    @blp.response(200, PasswordSetSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "A form without its CSRF token")
    @blp.problem(404, "The link is unknown, used or expired")
    @blp.problem(422, "The password is too weak")
    @blp.problem(429, "Too many attempts", headers={"Retry-After": RETRY_AFTER_HEADER})
    def post(self, data: dict[str, Any]) -> Any:
        """Set your password with the token of an invitation or reset link; then sign in."""
        answer = set_password_with_link(data["token"], data["password"])
        return answer if isinstance(answer, Response) else {"username": answer}


def set_password_with_link(token: str, password: str) -> Response | str:
    """Set a password with a link's token: the user's name, or the refusal (the API's and the
    link page's one path)."""
    context = ctx()
    limited = context.rate_limits.check("one_time_code", f"link:{client_address() or '-'}", what="attempts")
    if limited is not None:
        return limited
    try:
        return context.accounts.use_link(token, password)
    except Refused as exc:
        return refused(exc)
