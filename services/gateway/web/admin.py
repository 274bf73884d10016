"""The administrator's pages: users (their roles, memberships, activation, lockouts, password
links and second factor), and the regions and branches.

They call the use cases the administration API calls (``services.gateway.api.directory``),
validate what is typed with the API's own schemas, and show every refusal in words beside the
field it is about, with what was typed kept. Auditors read these pages (the directory is theirs
to read); only admins see the forms, and only admins may post them.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from flask import Response, redirect, request, url_for
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from services.gateway.access import permits
from services.gateway.api import has_nul
from services.gateway.api.directory import (
    change_branch,
    change_user,
    create_branch,
    create_region,
    create_user,
    deactivate_user,
    get_user,
    list_branches,
    list_regions,
    list_users,
    reactivate_user,
    rename_region,
    reset_second_factor,
    send_password_link,
    unlock_user,
)
from services.gateway.auth import current_actor
from services.gateway.identity_schemas import (
    BranchCreateSchema,
    BranchEditSchema,
    RegionEditSchema,
    RegionSchema,
    UserCreateSchema,
    UserEditSchema,
    UserListQuerySchema,
)
from services.gateway.web import bp, page, problem_detail
from services.gateway.web.formatting import BadAmount, minor_units
from services.gateway.web.requisitions import follow
from shared.contracts.money import CURRENCY_EXPONENTS
from shared.contracts.permissions import Action, may
from shared.contracts.roles import ROLES

F = TypeVar("F", bound=Callable[..., Any])

CURRENCIES = ("KES", "UGX", "TZS", "USD")
CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
LISTED = 200  # the most users one page lists; the search narrows it

# What a page says after a change it redirected from (``?done=``): fixed words, never the query's.
NOTICES = {
    "invited": "The user is made, and their invitation to set a password is mailed.",
    "invitation-unsent": "The user is made, but the invitation mail did not go out: send a password link below.",
    "changed": "The changes are saved.",
    "unchanged": "Nothing to change: everything is as it was.",
    "deactivated": "Deactivated: their sessions and tokens have ended, and they approve nothing any more.",
    "reactivated": "Reactivated: they may sign in again (their old API tokens stay revoked).",
    "unlocked": "Unlocked: they may try their password again.",
    "link-sent": "A one-time link to set a password is mailed to them.",
    "link-unsent": "The link is made, but the mail did not go out: try again later.",
    "second-factor-reset": "Their authenticator is forgotten: they enrol a new one when they next sign in.",
    "region-added": "The region is added.",
    "region-renamed": "The region is renamed.",
    "branch-added": "The branch is added.",
    "policy-published": "The new version of the approval policy is in force; open cases keep the version they had.",
    "caps-saved": "The caps are saved: submissions are checked against them from now on.",
}

# Refusals that are about one field: shown beside it.
USER_FIELDS = {
    "username-taken": "username",
    "email-taken": "email",
    "unknown-branch": "branches",
    "unknown-region": "regions",
    "last-admin": "roles",
}
BRANCH_FIELDS = {
    "branch-exists": "branch-code",
    "unknown-region": "branch-region",
    "levels-currency": "branch-currency",
    "imprest-below-reorder-level": "branch-imprest",
}
REGION_FIELDS = {"region-exists": "region-code"}


# -- shared by the admin pages (and the policy page) ------------------------------------------


def role_words(role: str) -> str:
    """``branch_manager`` as ``Branch manager`` (and ``cfo`` as ``CFO``)."""
    return "CFO" if role == "cfo" else role.replace("_", " ").capitalize()


def without_nul(view: F) -> F:
    """Refuse a form with a NUL in any field (no column can keep one), as the API refuses a body."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if has_nul(request.form.to_dict(flat=False)):
            return page("message.html", 400, title="That did not work", text="Text may not contain NUL characters.")
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]


def notice() -> str:
    """The words for this page's ``?done=``, if it names one."""
    return NOTICES.get(request.args.get("done", ""), "")


def leaves(value: Any) -> Iterator[str]:
    """Every message in marshmallow's nested messages."""
    if isinstance(value, dict):
        for inner in value.values():
            yield from leaves(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from leaves(inner)
    else:
        yield str(value)


def by_field(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's messages, one list per form field (``{"roles": {0: [...]}}`` is ``roles``)."""
    if not isinstance(messages, dict):
        return {"_schema": list(leaves(messages))}
    return {f"{prefix}{key}" if key != "_schema" else "_schema": list(leaves(value)) for key, value in messages.items()}


def refusal(answer: Response, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A use case's refusal for a form: beside its field when it is about one, else atop the form."""
    kind = str((answer.get_json(silent=True) or {}).get("type", ""))
    if fields and kind in fields:
        return {"errors": {fields[kind]: [problem_detail(answer)]}}
    return {"form_error": problem_detail(answer)}


def amount_typed(typed: str, currency: str) -> int:
    """An amount typed in major units, in minor units; :class:`BadAmount` (in words) if it is none."""
    try:
        return minor_units(typed, currency)
    except ArithmeticError:  # "sNaN", "1e999999999": no amount either
        raise BadAmount("Enter the amount as a number, such as 1250.00.") from None


def major(amount: Mapping[str, Any] | None) -> str:
    """``{"minor_units": 125050, "currency": "KES"}`` as the form shows it: ``1250.50``."""
    if not amount:
        return ""
    exponent = CURRENCY_EXPONENTS[amount["currency"]]
    return f"{Decimal(int(amount['minor_units'])).scaleb(-exponent):.{exponent}f}"


def redirect_done(endpoint: str, done: str, **values: Any) -> Response:
    """After a change, to the page that says so (``?done=``, one of :data:`NOTICES`)."""
    return redirect(url_for(endpoint, done=done, **values), 303)  # type: ignore[return-value]


# -- users ----------------------------------------------------------------------------------


def _choices() -> dict[str, Any]:
    """What a user's form offers, as (value, words): the roles, every branch and every region."""
    return {
        "role_options": [(role, role_words(role)) for role in ROLES],
        "branch_options": [(b["code"], f"{b['name']} ({b['code']})") for b in list_branches()["items"]],
        "region_options": [(r["code"], f"{r['name']} ({r['code']})") for r in list_regions()["items"]],
    }


def _locked(user: dict[str, Any]) -> bool:
    until = user.get("locked_until")
    return bool(until) and datetime.fromisoformat(until) > datetime.now(UTC)


def _search() -> tuple[dict[str, Any], str, dict[str, list[str]]]:
    """The list's filter (``?q=``), validated as the API validates it."""
    q = request.args.get("q", "").strip()
    try:
        return UserListQuerySchema().load({"limit": LISTED, **({"q": q} if q else {})}), q, {}
    except ValidationError as exc:
        return {"limit": LISTED}, q, by_field(exc.messages)


def _users_page(status: int = 200, **values: Any) -> Any:
    args, q, errors = _search()
    listed = list_users(args)["items"]
    for user in listed:
        user["locked"] = _locked(user)
    values.setdefault("form", MultiDict())
    return page(
        "admin_users.html",
        status,
        users=listed,
        q=q,
        search_errors=errors,
        more=len(listed) >= LISTED,
        notice=notice(),
        may_change=may(current_actor(), Action.ADMINISTER_USERS),
        **_choices(),
        **values,
    )


@bp.get("/admin/users")
@permits(Action.READ_DIRECTORY, sessions_only=True)
def admin_users() -> Any:
    """Users by username (``?q=`` finds by username, name or e-mail), and the form for a new one."""
    return _users_page()


def _typed_user(form: Any) -> dict[str, Any]:
    """A user's fields as typed: the API's body (the lists replace what is there)."""
    return {
        "full_name": form.get("full_name", "").strip(),
        "email": form.get("email", "").strip(),
        "roles": form.getlist("roles"),
        "branches": form.getlist("branches"),
        "regions": form.getlist("regions"),
    }


def _user_errors(exc: ValidationError, body: dict[str, Any]) -> dict[str, list[str]]:
    errors = by_field(exc.messages)
    if "roles" in errors and not body.get("roles"):
        errors["roles"] = ["Choose at least one role."]
    return errors


@bp.post("/admin/users")
@permits(Action.ADMINISTER_USERS, sessions_only=True)
@without_nul
def admin_create_user() -> Any:
    """Invite a user: the account, its roles and memberships; the invitation goes by mail."""
    body = {"username": request.form.get("username", "").strip(), **_typed_user(request.form)}
    try:
        data = UserCreateSchema().load(body)
    except ValidationError as exc:
        return _users_page(400, form=request.form, errors=_user_errors(exc, body))
    answer = create_user(data)
    if isinstance(answer, Response):
        return _users_page(answer.status_code, form=request.form, **refusal(answer, USER_FIELDS))
    made = answer[0]
    done = "invited" if made["invitation_sent"] else "invitation-unsent"
    return redirect_done("web.admin_user", done, user_id=made["id"])


def _form_of_user(user: dict[str, Any]) -> MultiDict[str, str]:
    form: MultiDict[str, str] = MultiDict({"full_name": user["full_name"], "email": user["email"] or ""})
    for key in ("roles", "branches", "regions"):
        form.setlist(key, user[key])
    return form


def _user_page(user_id: uuid.UUID, status: int = 200, **values: Any) -> Any:
    found = get_user(user_id)
    if isinstance(found, Response):
        return page("message.html", 404, title="Not found", text="There is no such user.")
    found["locked"] = _locked(found)
    values.setdefault("form", _form_of_user(found))
    return page(
        "admin_user.html",
        status,
        user=found,
        notice=notice(),
        may_change=may(current_actor(), Action.ADMINISTER_USERS),
        **_choices(),
        **values,
    )


@bp.get("/admin/users/<uuid:user_id>")
@permits(Action.READ_DIRECTORY, sessions_only=True)
def admin_user(user_id: uuid.UUID) -> Any:
    """One user, with what an admin may do about them."""
    return _user_page(user_id)


def _changes(user: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
    """What differs from the user as they are: a PATCH body (an empty address clears it)."""
    typed = {**typed, "email": typed["email"] or None}
    changed = {}
    for key, value in typed.items():
        before = user[key]
        differs = sorted(set(value)) != sorted(before) if isinstance(value, list) else value != before
        if differs:
            changed[key] = value
    return changed


@bp.post("/admin/users/<uuid:user_id>")
@permits(Action.ADMINISTER_USERS, sessions_only=True)
@without_nul
def admin_change_user(user_id: uuid.UUID) -> Any:
    """Change a user's name, address, roles, branches or regions (only what was changed is sent)."""
    found = get_user(user_id)
    if isinstance(found, Response):
        return page("message.html", 404, title="Not found", text="There is no such user.")
    body = _changes(found, _typed_user(request.form))
    if not body:
        return redirect_done("web.admin_user", "unchanged", user_id=user_id)
    try:
        data = UserEditSchema().load(body)
    except ValidationError as exc:
        return _user_page(user_id, 400, form=request.form, errors=_user_errors(exc, body))
    answer = change_user(user_id, data)
    if isinstance(answer, Response):
        return _user_page(user_id, answer.status_code, form=request.form, **refusal(answer, USER_FIELDS))
    return redirect_done("web.admin_user", "changed", user_id=user_id)


def _after(user_id: uuid.UUID, answer: Any, done: str) -> Any:
    """After one of the user page's buttons: the page again, saying what happened or why not."""
    if isinstance(answer, Response) and answer.status_code >= 400:
        return _user_page(user_id, answer.status_code, error=problem_detail(answer))
    if isinstance(answer, Response) and answer.status_code == 202:
        return follow(answer)
    return redirect_done("web.admin_user", done, user_id=user_id)


@bp.post("/admin/users/<uuid:user_id>/deactivate")
@permits(Action.ADMINISTER_USERS, sessions_only=True)
@without_nul
def admin_deactivate(user_id: uuid.UUID) -> Any:
    return _after(user_id, deactivate_user(user_id), "deactivated")


@bp.post("/admin/users/<uuid:user_id>/reactivate")
@permits(Action.ADMINISTER_USERS, sessions_only=True)
@without_nul
def admin_reactivate(user_id: uuid.UUID) -> Any:
    return _after(user_id, reactivate_user(user_id), "reactivated")


@bp.post("/admin/users/<uuid:user_id>/unlock")
@permits(Action.ADMINISTER_USERS, sessions_only=True)
@without_nul
def admin_unlock(user_id: uuid.UUID) -> Any:
    return _after(user_id, unlock_user(user_id), "unlocked")


@bp.post("/admin/users/<uuid:user_id>/password-link")
@permits(Action.ADMINISTER_USERS, sessions_only=True)
@without_nul
def admin_password_link(user_id: uuid.UUID) -> Any:
    """Mail a one-time link to set a password: an invitation until they have one, else a reset."""
    answer = send_password_link(user_id)
    sent = not isinstance(answer, Response) and answer[0]["sent"]
    return _after(user_id, answer, "link-sent" if sent else "link-unsent")


@bp.post("/admin/users/<uuid:user_id>/second-factor/reset")
@permits(Action.ADMINISTER_USERS, sessions_only=True)
@without_nul
def admin_reset_second_factor(user_id: uuid.UUID) -> Any:
    """Forget a user's authenticator (a lost phone): they enrol a new one at their next sign-in."""
    return _after(user_id, reset_second_factor(user_id), "second-factor-reset")


# -- regions and branches -------------------------------------------------------------------


def _pairs(regions: list[dict[str, Any]]) -> dict[str, Any]:
    """The choices of a branch's form, as (value, words): its region, its levels' currency."""
    return {
        "region_pairs": [(r["code"], f"{r['name']} ({r['code']})") for r in regions],
        "currency_pairs": [(c, c) for c in CURRENCIES],
    }


def _branches_page(status: int = 200, **values: Any) -> Any:
    values.setdefault("form", MultiDict())
    regions = list_regions()["items"]
    return page(
        "admin_branches.html",
        status,
        regions=regions,
        branches=list_branches()["items"],
        **_pairs(regions),
        notice=notice(),
        may_change=may(current_actor(), Action.ADMINISTER_ORGANISATION),
        **values,
    )


@bp.get("/admin/branches")
@permits(Action.READ_DIRECTORY, sessions_only=True)
def admin_branches() -> Any:
    """The regions and their branches, and the forms to add and rename them."""
    return _branches_page()


@bp.post("/admin/regions")
@permits(Action.ADMINISTER_ORGANISATION, sessions_only=True)
@without_nul
def admin_create_region() -> Any:
    form = request.form
    body = {"code": form.get("code", "").strip().upper(), "name": form.get("name", "").strip()}
    try:
        data = RegionSchema().load(body)
    except ValidationError as exc:
        return _branches_page(400, adding="region", form=form, errors=by_field(exc.messages, "region-"))
    answer = create_region(data)
    if isinstance(answer, Response):
        return _branches_page(answer.status_code, adding="region", form=form, **refusal(answer, REGION_FIELDS))
    return redirect_done("web.admin_branches", "region-added")


@bp.post("/admin/regions/<region_code>")
@permits(Action.ADMINISTER_ORGANISATION, sessions_only=True)
@without_nul
def admin_rename_region(region_code: str) -> Any:
    form = request.form
    try:
        data = RegionEditSchema().load({"name": form.get("name", "").strip()})
    except ValidationError as exc:
        errors = {f"rename-{region_code}": list(leaves(exc.messages))}
        return _branches_page(400, renaming=region_code, form=form, errors=errors)
    answer = rename_region(region_code, data)
    if isinstance(answer, Response):
        return _branches_page(answer.status_code, renaming=region_code, form=form, error=problem_detail(answer))
    return redirect_done("web.admin_branches", "region-renamed")


def _levels(form: Any, errors: dict[str, list[str]], *, blank_clears: bool) -> dict[str, Any]:
    """The float's reorder level and imprest amount as typed (in one currency), as the API's money."""
    currency = form.get("currency", "")
    levels: dict[str, Any] = {}
    for key in ("reorder_level", "imprest"):
        typed = form.get(key, "").strip()
        if not typed:
            if blank_clears:
                levels[key] = None
            continue
        try:
            levels[key] = {"minor_units": amount_typed(typed, currency), "currency": currency}
        except BadAmount as exc:
            errors[f"branch-{key}"] = [str(exc)]
    return levels


def _typed_branch(form: Any, errors: dict[str, list[str]], *, editing: bool) -> dict[str, Any]:
    body = {
        "name": form.get("name", "").strip(),
        "region": form.get("region", ""),
        "head_office": bool(form.get("head_office")),
        **_levels(form, errors, blank_clears=editing),
    }
    if not editing:
        body["code"] = form.get("code", "").strip().upper()
    return body


@bp.post("/admin/branches")
@permits(Action.ADMINISTER_ORGANISATION, sessions_only=True)
@without_nul
def admin_create_branch() -> Any:
    """Add a branch to a region, with its float's levels if known."""
    form = request.form
    errors: dict[str, list[str]] = {}
    body = _typed_branch(form, errors, editing=False)
    data: dict[str, Any] = {}
    try:
        data = BranchCreateSchema().load(body)
    except ValidationError as exc:
        errors = {**by_field(exc.messages, "branch-"), **errors}
    if errors:
        return _branches_page(400, adding="branch", form=form, errors=errors)
    answer = create_branch(data)
    if isinstance(answer, Response):
        return _branches_page(answer.status_code, adding="branch", form=form, **refusal(answer, BRANCH_FIELDS))
    return redirect_done("web.admin_branches", "branch-added")


def _branch(code: str) -> dict[str, Any] | None:
    if not CODE.match(code):
        return None
    return next((b for b in list_branches()["items"] if b["code"] == code), None)


def _form_of_branch(found: dict[str, Any]) -> MultiDict[str, str]:
    levels = found["reorder_level"] or found["imprest"] or {}
    return MultiDict(
        {
            "name": found["name"],
            "region": found["region"],
            "head_office": "1" if found["head_office"] else "",
            "reorder_level": major(found["reorder_level"]),
            "imprest": major(found["imprest"]),
            "currency": levels.get("currency", "KES"),
        }
    )


def _branch_page(found: dict[str, Any], status: int = 200, **values: Any) -> Any:
    values.setdefault("form", _form_of_branch(found))
    return page(
        "admin_branch.html",
        status,
        branch=found,
        **_pairs(list_regions()["items"]),
        notice=notice(),
        may_change=may(current_actor(), Action.ADMINISTER_ORGANISATION),
        **values,
    )


NO_BRANCH = "There is no branch with this code."


@bp.get("/admin/branches/<branch_code>")
@permits(Action.READ_DIRECTORY, sessions_only=True)
def admin_branch(branch_code: str) -> Any:
    """One branch, and the form to change it."""
    found = _branch(branch_code)
    if found is None:
        return page("message.html", 404, title="Not found", text=NO_BRANCH)
    return _branch_page(found)


def _branch_changes(found: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in typed.items() if value != found[key]}


@bp.post("/admin/branches/<branch_code>")
@permits(Action.ADMINISTER_ORGANISATION, sessions_only=True)
@without_nul
def admin_change_branch(branch_code: str) -> Any:
    """Change a branch's name, region, head-office flag or float levels (an empty level clears it)."""
    found = _branch(branch_code)
    if found is None:
        return page("message.html", 404, title="Not found", text=NO_BRANCH)
    form = request.form
    errors: dict[str, list[str]] = {}
    body = _branch_changes(found, _typed_branch(form, errors, editing=True))
    if not body and not errors:
        return redirect_done("web.admin_branch", "unchanged", branch_code=branch_code)
    data: dict[str, Any] = {}
    try:
        data = BranchEditSchema().load(body)
    except ValidationError as exc:
        errors = {**by_field(exc.messages, "branch-"), **errors}
    if errors:
        return _branch_page(found, 400, form=form, errors=errors)
    answer = change_branch(branch_code, data)
    if isinstance(answer, Response):
        return _branch_page(found, answer.status_code, form=form, **refusal(answer, BRANCH_FIELDS))
    return redirect_done("web.admin_branch", "changed", branch_code=branch_code)
