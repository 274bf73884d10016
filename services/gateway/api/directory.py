"""``/api/v1/admin/...``: regions, branches (and their float levels), users, roles,
memberships, invitations, password resets, deactivation, lockouts, tokens and second factors
(admin; auditors read the directory)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Response
from flask.views import MethodView

from services.gateway import directory as dir_
from services.gateway.access import permits
from services.gateway.accounts import INVITATION, RESET, Refused
from services.gateway.api import Blueprint, ctx
from services.gateway.api.account import reset_authenticator
from services.gateway.api.passwords import send_link
from services.gateway.api.session import refused
from services.gateway.auth import current_actor
from services.gateway.identity_schemas import (
    BranchCreateSchema,
    BranchEditSchema,
    BranchListSchema,
    BranchSchema,
    InvitedUserSchema,
    LinkSentSchema,
    PermissionTableSchema,
    RegionEditSchema,
    RegionListSchema,
    RegionSchema,
    TokenListSchema,
    UserCreateSchema,
    UserEditSchema,
    UserListQuerySchema,
    UserListSchema,
    UserSchema,
)
from services.gateway.models import User
from shared.contracts.permissions import PERMISSIONS, Action
from shared.contracts.roles import ROLES

blp = Blueprint("directory", __name__, url_prefix="/api/v1/admin", description="Administration: who is who")

CODE_PATH = {"schema": {"type": "string", "pattern": "^[A-Z0-9][A-Z0-9-]{0,31}$"}}


def _in_transaction(work: Callable[[Any], Any]) -> Any:
    """Run ``work(session)`` in one transaction; a refusal rolls it back and is answered as a problem."""
    with ctx().db.uow() as uow:
        try:
            result = work(uow.session)
        except Refused as exc:
            return refused(exc)
        uow.commit()
        return result


def _user_answer(user_id: str, change: Callable[[Any, User], None]) -> Any:
    """Apply ``change(session, user)`` to one user and answer with the user as they are now."""

    def work(session: Any) -> dict[str, Any]:
        user = dir_.get_user(session, user_id)
        change(session, user)
        session.flush()
        return dir_.user_body(session, user)

    return _in_transaction(work)


def _after_commit(answer: Any, then: Callable[[], None]) -> Any:
    """Run ``then`` once the change committed (not after a refusal)."""
    if not isinstance(answer, Response):
        then()
    return answer


# -- the use cases: the API's views and the admin pages call these ---------------------------
#
# Each answers as its view does: a body (for the view's response schema to dump), a body and
# its status, or a problem ``Response`` (a refusal) passed through as it is.


def list_regions() -> Any:
    """Every region: ``{"items": [...]}``."""
    return _in_transaction(lambda s: {"items": dir_.regions(s)})


def create_region(data: dict[str, Any]) -> Any:
    """Add a region (``RegionSchema``'s ``code`` and ``name``): the region and 201, or a refusal."""
    answer = _in_transaction(lambda s: dir_.create_region(s, data["code"], data["name"]))
    return answer if isinstance(answer, Response) else (answer, 201)


def rename_region(region_code: str, data: dict[str, Any]) -> Any:
    """Rename a region (``RegionEditSchema``): the region, or 404."""
    return _in_transaction(lambda s: dir_.update_region(s, region_code, data["name"]))


def list_branches() -> Any:
    """Every branch with its float levels: ``{"items": [...]}``."""
    return _in_transaction(lambda s: {"items": dir_.branches(s)})


def create_branch(data: dict[str, Any]) -> Any:
    """Add a branch (``BranchCreateSchema``): the branch and 201, or a refusal."""
    answer = _in_transaction(lambda s: dir_.create_branch(s, data))
    return answer if isinstance(answer, Response) else (answer, 201)


def change_branch(branch_code: str, data: dict[str, Any]) -> Any:
    """Change a branch (``BranchEditSchema``, PATCH semantics): the branch, or a refusal."""
    return _in_transaction(lambda s: dir_.update_branch(s, branch_code, data))


def list_users(args: dict[str, Any]) -> Any:
    """Users by username (``UserListQuerySchema``'s filters): ``{"items", "limit", "offset"}``."""
    return _in_transaction(lambda s: dir_.list_users(s, **args))


def create_user(data: dict[str, Any]) -> Any:
    """Invite a user (``UserCreateSchema``) and mail the invitation: the user and 201, or a refusal."""
    directory = ctx().directory
    admin = current_actor()
    invited: dict[str, Any] = {}

    def work(session: Any) -> dict[str, Any]:
        user, link = directory.invite(session, admin, data)
        invited.update(url=link.url, email=link.email, name=user.full_name, expires=link.expires_at.isoformat())
        return dir_.user_body(session, user)

    answer = _in_transaction(work)
    if isinstance(answer, Response):
        return answer
    hours = ctx().settings.identity.invitation_hours
    sent = send_link(invited["email"], invited["name"], INVITATION, invited["url"], hours)
    return {**answer, "invitation_sent": sent, "invitation_expires_at": invited["expires"]}, 201


def get_user(user_id: uuid.UUID) -> Any:
    """One user, or 404."""
    return _user_answer(str(user_id), lambda s, u: None)


def change_user(user_id: uuid.UUID, data: dict[str, Any]) -> Any:
    """Change a user (``UserEditSchema``: only the fields given; lists replace): the user, or a refusal."""
    admin = current_actor()
    return _user_answer(str(user_id), lambda s, u: ctx().directory.change(s, admin, u, data))


def deactivate_user(user_id: uuid.UUID) -> Any:
    """Deactivate a user and end their sessions: the user, or a refusal."""
    admin = current_actor()
    answer = _user_answer(str(user_id), lambda s, u: ctx().directory.deactivate(s, admin, u))
    return _after_commit(answer, lambda: ctx().sessions.end_user(str(user_id)))


def reactivate_user(user_id: uuid.UUID) -> Any:
    """Let a deactivated user sign in again: the user, or 404."""
    admin = current_actor()
    return _user_answer(str(user_id), lambda s, u: ctx().directory.reactivate(s, admin, u))


def unlock_user(user_id: uuid.UUID) -> Any:
    """Lift a lockout: the user, or 404."""
    admin = current_actor()
    return _user_answer(str(user_id), lambda s, u: ctx().directory.unlock(s, admin, u))


def send_password_link(user_id: uuid.UUID) -> Any:
    """Mail a one-time password link (an invitation, or a reset): ``{"expires_at", "sent"}`` and 201, or a refusal."""
    context = ctx()
    made: dict[str, Any] = {}

    def work(session: Any) -> dict[str, Any]:
        user = dir_.get_user(session, str(user_id))
        if not user.is_active or not user.email:
            raise Refused(409, "cannot-send-link", "The user is inactive or has no e-mail address.")
        purpose = RESET if user.password_hash else INVITATION
        link = context.accounts.make_link(session, user, purpose)
        made.update(email=user.email, name=user.full_name, purpose=purpose, url=link.url)
        return {"expires_at": link.expires_at.isoformat()}

    answer = _in_transaction(work)
    if isinstance(answer, Response):
        return answer
    identity = context.settings.identity
    hours = identity.invitation_hours if made["purpose"] == INVITATION else identity.password_reset_hours
    sent = send_link(made["email"], made["name"], made["purpose"], made["url"], hours)
    return {**answer, "sent": sent}, 201


def reset_second_factor(user_id: uuid.UUID) -> Any:
    """Have the payment service forget a user's authenticator: the user, a 202, or a refusal."""
    found = _user_answer(str(user_id), lambda s, u: None)
    if isinstance(found, Response):
        return found
    answer = reset_authenticator(str(user_id))
    return answer or _user_answer(str(user_id), lambda s, u: None)


# -- regions and branches ------------------------------------------------------------------


@blp.route("/regions")
class Regions(MethodView):
    @permits(Action.READ_DIRECTORY)
    @blp.response(200, RegionListSchema)
    def get(self) -> Any:
        """Every region."""
        return list_regions()

    @permits(Action.ADMINISTER_ORGANISATION)
    @blp.arguments(RegionSchema)
    @blp.response(201, RegionSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(409, "The code is taken")
    def post(self, data: dict[str, Any]) -> Any:
        """Add a region."""
        return create_region(data)


@blp.route("/regions/<region_code>", parameters=[{"in": "path", "name": "region_code", **CODE_PATH}])
class RegionView(MethodView):
    @permits(Action.ADMINISTER_ORGANISATION)
    @blp.arguments(RegionEditSchema)
    @blp.response(200, RegionSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(404, "No such region")
    def patch(self, data: dict[str, Any], region_code: str) -> Any:
        """Rename a region."""
        return rename_region(region_code, data)


@blp.route("/branches")
class Branches(MethodView):
    @permits(Action.READ_DIRECTORY)
    @blp.response(200, BranchListSchema)
    def get(self) -> Any:
        """Every branch, with its float's reorder level and imprest amount."""
        return list_branches()

    @permits(Action.ADMINISTER_ORGANISATION)
    @blp.arguments(BranchCreateSchema)
    @blp.response(201, BranchSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(409, "The code is taken")
    @blp.problem(422, "Unknown region, or levels that do not fit together")
    def post(self, data: dict[str, Any]) -> Any:
        """Add a branch to a region (the ledger hears of its float levels)."""
        return create_branch(data)


@blp.route("/branches/<branch_code>", parameters=[{"in": "path", "name": "branch_code", **CODE_PATH}])
class BranchView(MethodView):
    @permits(Action.ADMINISTER_ORGANISATION)
    @blp.arguments(BranchEditSchema)
    @blp.response(200, BranchSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(404, "No such branch")
    @blp.problem(422, "Unknown region, or levels that do not fit together")
    def patch(self, data: dict[str, Any], branch_code: str) -> Any:
        """Change a branch: its name, region, head-office flag, reorder level or imprest amount."""
        return change_branch(branch_code, data)


# -- roles -------------------------------------------------------------------------------------


@blp.route("/roles")
class Roles(MethodView):
    @permits(Action.READ_DIRECTORY)
    @blp.response(200, PermissionTableSchema)
    def get(self) -> Any:
        """The roles, and the permission table: which roles may take each action, over which branches."""
        rules = [
            {"action": str(action), "roles": sorted(rule.roles), "scope": str(rule.scope)}
            for action, rule in PERMISSIONS.items()
        ]
        return {"roles": list(ROLES), "rules": rules}


# -- users -------------------------------------------------------------------------------------


@blp.route("/users")
class Users(MethodView):
    @permits(Action.READ_DIRECTORY)
    @blp.arguments(UserListQuerySchema, location="query")
    @blp.response(200, UserListSchema)
    @blp.problem(400, "Malformed query")
    def get(self, args: dict[str, Any]) -> Any:
        """Users, by username; filter by text, role, branch code, active."""
        return list_users(args)

    @permits(Action.ADMINISTER_USERS)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, InvitedUserSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(409, "The username or e-mail address is taken")
    @blp.problem(422, "Unknown branch or region")
    def post(self, data: dict[str, Any]) -> Any:
        """Invite a user: the account, its roles and memberships, and a link (by mail) to set a password."""
        return create_user(data)


USER_PATH = "/users/<uuid:user_id>"


@blp.route(USER_PATH)
class UserView(MethodView):
    @permits(Action.READ_DIRECTORY)
    @blp.response(200, UserSchema)
    @blp.problem(404, "No such user")
    def get(self, user_id: uuid.UUID) -> Any:
        """One user."""
        return get_user(user_id)

    @permits(Action.ADMINISTER_USERS)
    @blp.arguments(UserEditSchema)
    @blp.response(200, UserSchema)
    @blp.problem(400, "Malformed body")
    @blp.problem(404, "No such user")
    @blp.problem(409, "The e-mail address is taken, or this would leave no active admin")
    @blp.problem(422, "Unknown branch or region")
    def patch(self, data: dict[str, Any], user_id: uuid.UUID) -> Any:
        """Change a user's name, address, roles, branches or regions (lists replace what is there)."""
        return change_user(user_id, data)


@blp.route(f"{USER_PATH}/deactivate")
class Deactivate(MethodView):
    @permits(Action.ADMINISTER_USERS)
    @blp.response(200, UserSchema)
    @blp.problem(404, "No such user")
    @blp.problem(409, "The last active admin")
    def post(self, user_id: uuid.UUID) -> Any:
        """Deactivate a user: their sessions and tokens end at once; they leave approver routing."""
        return deactivate_user(user_id)


@blp.route(f"{USER_PATH}/reactivate")
class Reactivate(MethodView):
    @permits(Action.ADMINISTER_USERS)
    @blp.response(200, UserSchema)
    @blp.problem(404, "No such user")
    def post(self, user_id: uuid.UUID) -> Any:
        """Let a deactivated user sign in again (their old tokens stay revoked)."""
        return reactivate_user(user_id)


@blp.route(f"{USER_PATH}/unlock")
class Unlock(MethodView):
    @permits(Action.ADMINISTER_USERS)
    @blp.response(200, UserSchema)
    @blp.problem(404, "No such user")
    def post(self, user_id: uuid.UUID) -> Any:
        """Lift a lockout earned by wrong passwords."""
        return unlock_user(user_id)


@blp.route(f"{USER_PATH}/password-link")
class SendPasswordLink(MethodView):
    @permits(Action.ADMINISTER_USERS)
    @blp.response(201, LinkSentSchema)
    @blp.problem(404, "No such user")
    @blp.problem(409, "The user is inactive or has no e-mail address")
    def post(self, user_id: uuid.UUID) -> Any:
        """Mail the user a one-time link to set a password: an invitation until they have one, else a reset."""
        return send_password_link(user_id)


@blp.route(f"{USER_PATH}/second-factor/reset")
class ResetSecondFactor(MethodView):
    @permits(Action.ADMINISTER_USERS)
    @blp.response(200, UserSchema)
    @blp.accepted()
    @blp.problem(404, "No such user, or no authenticator to reset")
    def post(self, user_id: uuid.UUID) -> Any:
        """Forget a user's authenticator (a lost phone): they enrol a new one at their next sign-in."""
        return reset_second_factor(user_id)


@blp.route(f"{USER_PATH}/tokens")
class UserTokens(MethodView):
    @permits(Action.ADMINISTER_USERS)
    @blp.response(200, TokenListSchema)
    @blp.problem(404, "No such user")
    def get(self, user_id: uuid.UUID) -> Any:
        """A user's API tokens (never their secrets)."""
        found = _user_answer(str(user_id), lambda s, u: None)
        if isinstance(found, Response):
            return found
        return {"items": ctx().accounts.tokens(str(user_id))}


@blp.route(f"{USER_PATH}/tokens/<uuid:token_id>")
class UserToken(MethodView):
    @permits(Action.ADMINISTER_USERS)
    @blp.response(204)
    @blp.problem(404, "No such user or token")
    def delete(self, user_id: uuid.UUID, token_id: uuid.UUID) -> Any:
        """Revoke a user's token."""
        try:
            ctx().accounts.revoke_token(current_actor(), str(user_id), token_id)
        except Refused as exc:
            return refused(exc)
        return None
