"""The organisation's rules as pages (finance, CFO, auditors and admins read them): the approval
policy in force (tiers, chains, approver limits, SLAs) and the caps; an admin changes both here.

Each change replaces the whole document, as the API's ``PUT`` does: a new version of the policy
(open cases keep theirs), or the caps. What is typed is validated with the API's schemas and the
services' refusals are said in words, beside the field they are about when they name one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Response, request
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api.admin import set_caps
from services.gateway.api.approvals import set_policy
from services.gateway.api.directory import list_branches
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.branches import UnknownBranch
from services.gateway.schemas import CapsSchema, PolicySchema
from services.gateway.web import bp, page, problem_detail
from services.gateway.web.admin import CURRENCIES, amount_typed, leaves, major, notice, redirect_done, without_nul
from services.gateway.web.formatting import BadAmount
from services.gateway.web.requisitions import follow
from shared.contracts.payloads import CATEGORIES, ORIGINS
from shared.contracts.permissions import Action, may
from shared.contracts.roles import ROLES

MAX_ROWS = 32  # tiers or caps one form may carry
NUMBER = re.compile(r"^[0-9]{1,15}$")
KINDS = {"category_per_requisition": "Each requisition of a category", "branch_monthly": "A branch's month"}
# A schema's field, as the form names it.
TIER_FIELDS = {"up_to_major": "up_to"}
CAP_FIELDS = {"limit": "amount", "branch_id": "branch"}
INCOMPLETE = "The form came incomplete: reload the page and try again."


@bp.get("/policy")
@permits(Action.READ_POLICY, sessions_only=True)
def policy() -> Any:
    return _policy_page()


def _policy_page(status: int = 200, **values: Any) -> Any:
    actor = current_actor()
    found, caps = read(reads.document, "policy"), read(reads.document, "caps")
    branches = list_branches()["items"]
    codes = {b["id"]: b["code"] for b in branches}
    values.setdefault("policy_form", _form_of_policy(found))
    values.setdefault("caps_form", _form_of_caps(caps, codes))
    return page(
        "policy.html",
        status,
        policy=found,
        caps=caps,
        branch_codes=codes,
        kinds=KINDS,
        category_pairs=[(c, c.replace("_", " ").capitalize()) for c in CATEGORIES],
        branch_pairs=[(b["code"], f"{b['name']} ({b['code']})") for b in branches],
        origin_pairs=[(o, o.replace("_", " ").capitalize()) for o in ORIGINS],
        roles=ROLES,
        currencies=CURRENCIES,
        tier_rows=_rows(values["policy_form"], "tier_rows"),
        cap_rows=_rows(values["caps_form"], "cap_rows"),
        notice=notice(),
        may_set_policy=may(actor, Action.SET_POLICY),
        may_set_caps=may(actor, Action.SET_CAPS),
        **values,
    )


def _rows(form: Any, key: str) -> int:
    typed = str(form.get(key, ""))
    return min(int(typed), MAX_ROWS) if NUMBER.match(typed) else 0


def _loaded(
    which: str, form: Any, rows_field: str, typed: Callable[..., Any], schema: type[Any], errors_of: Callable[..., Any]
) -> tuple[Any, Any]:
    """The ``which`` form (``policy`` or ``caps``) typed and loaded through the API's schema:
    ((body, rows), None), or (None, the form's page again with each error beside its field).
    A form without its row count is refused whole: never an empty document for a lost form."""
    if not NUMBER.match(form.get(rows_field, "")):
        return None, _policy_page(400, **{f"{which}_error": INCOMPLETE})
    errors: dict[str, list[str]] = {}
    body, rows = typed(form, errors)
    data: dict[str, Any] = {}
    try:
        data = schema().load(body)
    except ValidationError as exc:
        errors = {**errors_of(exc.messages, rows), **errors}
    if errors:
        return None, _policy_page(400, **{f"{which}_form": form, f"{which}_errors": errors})
    return (data, rows), None


def _after(answer: Any, done: str, which: str, form: Any) -> Any:
    """After a change: the page saying so, the page that follows a command still running, or the
    ``which`` form (``policy`` or ``caps``) again, as typed, with the refusal in words."""
    if isinstance(answer, Response) and answer.status_code >= 400:
        values = {f"{which}_form": form, f"{which}_error": problem_detail(answer)}
        return _policy_page(answer.status_code, **values)
    if isinstance(answer, Response) and answer.status_code == 202:
        return follow(answer)
    return redirect_done("web.policy", done)


# -- the approval policy ---------------------------------------------------------------------


def _form_of_policy(found: dict[str, Any] | None) -> MultiDict[str, str]:
    """The policy in force as the form's fields, and an empty row for a tier more."""
    found = found or {}
    form: MultiDict[str, str] = MultiDict()
    tiers = found.get("tiers", [])
    for i, tier in enumerate(tiers):
        up_to = tier["up_to_major"]
        form[f"tier-{i}-origin"] = tier["origin"]
        form[f"tier-{i}-name"] = tier["name"]
        form[f"tier-{i}-up_to"] = "" if up_to is None else str(up_to)
        form[f"tier-{i}-chain"] = ", ".join(tier["chain"])
    form["tier_rows"] = str(len(tiers) + 1)
    for role, limit in found.get("limits", {}).items():
        form[f"limit-{role}-none" if limit is None else f"limit-{role}"] = "1" if limit is None else str(limit)
    form["sla_hours"] = str(found.get("sla_hours", 24))
    form["urgent_sla_hours"] = str(found.get("urgent_sla_hours", 2))
    return form


def _whole(typed: str, errors: dict[str, list[str]], key: str, why: str) -> int | None:
    """A whole number as typed (``50,000`` too); empty is None; anything else is an error at ``key``."""
    typed = typed.replace(",", "").replace(" ", "").strip()
    if not typed:
        return None
    if NUMBER.match(typed):
        return int(typed)
    errors[key] = [why]
    return None


def _chain(typed: str) -> list[str]:
    """``branch manager, finance`` (or ``branch_manager → finance``) as the roles' names."""
    return [part.strip().lower().replace(" ", "_") for part in re.split(r"[,→>]+", typed) if part.strip()]


def _typed_tiers(form: Any, errors: dict[str, list[str]]) -> tuple[list[dict[str, Any]], list[int]]:
    """The tiers as typed (without the removed and the empty rows), and the row each came from."""
    tiers, rows = [], []
    for i in range(_rows(form, "tier_rows")):
        fields = {key: form.get(f"tier-{i}-{key}", "").strip() for key in ("origin", "name", "up_to", "chain")}
        if form.get(f"tier-{i}-remove") or not (fields["name"] or fields["up_to"] or fields["chain"]):
            continue
        up_to = _whole(fields["up_to"], errors, f"tier-{i}-up_to", "A whole number of major units, or empty.")
        tiers.append(
            {"origin": fields["origin"], "name": fields["name"], "up_to_major": up_to, "chain": _chain(fields["chain"])}
        )
        rows.append(i)
    return tiers, rows


def _typed_limits(form: Any, errors: dict[str, list[str]]) -> dict[str, int | None]:
    """Each role's limit: a number, "no limit" (None), or none given (it may approve nothing)."""
    limits: dict[str, int | None] = {}
    for role in ROLES:
        if form.get(f"limit-{role}-none"):
            limits[role] = None
            continue
        limit = _whole(form.get(f"limit-{role}", ""), errors, f"limit-{role}", "A whole number of major units.")
        if limit is not None:
            limits[role] = limit
    return limits


def _typed_policy(form: Any, errors: dict[str, list[str]]) -> tuple[dict[str, Any], list[int]]:
    tiers, rows = _typed_tiers(form, errors)
    body: dict[str, Any] = {"tiers": tiers, "limits": _typed_limits(form, errors)}
    for key in ("sla_hours", "urgent_sla_hours"):
        hours = _whole(form.get(key, ""), errors, key, "A whole number of hours.")
        if hours is None and key not in errors:
            errors[key] = ["Enter a number of hours."]
        body[key] = 1 if hours is None else hours  # a stand-in, so the schema checks the rest
    return body, rows


def _policy_errors(messages: Any, rows: list[int]) -> dict[str, list[str]]:
    """The schema's messages by the form's fields: ``tiers.2.chain`` is row 2's ``tier-<row>-chain``."""
    errors: dict[str, list[str]] = {}
    for key, value in messages.items() if isinstance(messages, dict) else [("_schema", messages)]:
        if key in ("tiers", "limits") and isinstance(value, dict):
            errors.update(_nested_errors(key, value, rows))
        else:
            errors[key] = list(leaves(value))
    return errors


def _nested_errors(key: str, value: dict[Any, Any], rows: list[int]) -> dict[str, list[str]]:
    if key == "limits":
        return {f"limit-{role}": list(leaves(inner)) for role, inner in value.items()}
    errors: dict[str, list[str]] = {}
    for index, fields in value.items():
        row = rows[index] if isinstance(index, int) and 0 <= index < len(rows) else index
        for field, inner in fields.items() if isinstance(fields, dict) else [("name", fields)]:
            errors[f"tier-{row}-{TIER_FIELDS.get(field, field)}"] = list(leaves(inner))
    return errors


@bp.post("/policy/approval")
@permits(Action.SET_POLICY, sessions_only=True)
@without_nul
def set_approval_policy() -> Any:
    """Publish a new version of the approval policy: its tiers, the approvers' limits, the SLAs."""
    form = request.form
    loaded, refused = _loaded("policy", form, "tier_rows", _typed_policy, PolicySchema, _policy_errors)
    if refused is not None:
        return refused
    return _after(set_policy(loaded[0]), "policy-published", "policy", form)


# -- the caps --------------------------------------------------------------------------------


def _form_of_caps(caps: dict[str, Any] | None, codes: dict[str, str]) -> MultiDict[str, str]:
    """The caps in force as the form's fields (branches by code), and an empty row for one more."""
    form: MultiDict[str, str] = MultiDict()
    listed = (caps or {}).get("caps", [])
    for i, cap in enumerate(listed):
        form[f"cap-{i}-kind"] = cap["kind"]
        form[f"cap-{i}-category"] = cap.get("category") or ""
        form[f"cap-{i}-branch"] = codes.get(cap.get("branch_id") or "", "")
        form[f"cap-{i}-amount"] = major(cap["limit"])
        form[f"cap-{i}-currency"] = cap["limit"]["currency"]
    form["cap_rows"] = str(len(listed) + 1)
    return form


def _typed_cap(form: Any, i: int, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    """Row ``i`` of the caps as the API's cap; None when removed, empty, or its amount is no amount."""
    amount = form.get(f"cap-{i}-amount", "").strip()
    if form.get(f"cap-{i}-remove") or not amount:
        return None
    kind, currency = form.get(f"cap-{i}-kind", ""), form.get(f"cap-{i}-currency", "")
    try:
        limit = {"minor_units": amount_typed(amount, currency), "currency": currency}
    except BadAmount as exc:
        errors[f"cap-{i}-amount"] = [str(exc)]
        return None
    category = form.get(f"cap-{i}-category", "") or None
    if kind == "category_per_requisition" and category is None:
        errors[f"cap-{i}-category"] = ["Choose the category this cap is for."]
    per_category = kind == "category_per_requisition"
    return {
        "kind": kind,
        "category": category if per_category else None,
        "branch_id": form.get(f"cap-{i}-branch", "") or None,
        "limit": limit,
    }


def _typed_caps(form: Any, errors: dict[str, list[str]]) -> tuple[dict[str, Any], list[int]]:
    caps, rows = [], []
    for i in range(_rows(form, "cap_rows")):
        cap = _typed_cap(form, i, errors)
        if cap is not None:
            caps.append(cap)
            rows.append(i)
    return {"caps": caps}, rows


def _caps_errors(messages: Any, rows: list[int]) -> dict[str, list[str]]:
    listed = messages.get("caps") if isinstance(messages, dict) else None
    if not isinstance(listed, dict):
        return {"caps": list(leaves(messages))}
    errors: dict[str, list[str]] = {}
    for index, fields in listed.items():
        row = rows[index] if isinstance(index, int) and 0 <= index < len(rows) else index
        for field, inner in fields.items() if isinstance(fields, dict) else [("kind", fields)]:
            errors[f"cap-{row}-{CAP_FIELDS.get(field, field)}"] = list(leaves(inner))
    return errors


def _unknown_branch(form: Any, rows: list[int], code: str) -> dict[str, list[str]]:
    row = next((i for i in rows if form.get(f"cap-{i}-branch") == code), None)
    return {f"cap-{row}-branch" if row is not None else "caps": [f"No branch has code {code!r}."]}


@bp.post("/policy/caps")
@permits(Action.SET_CAPS, sessions_only=True)
@without_nul
def set_policy_caps() -> Any:
    """Replace the caps: per requisition of a category, or per branch per month (a branch's, or every one's)."""
    form = request.form
    loaded, refused = _loaded("caps", form, "cap_rows", _typed_caps, CapsSchema, _caps_errors)
    if refused is not None:
        return refused
    data, rows = loaded
    try:
        answer = set_caps(data)
    except UnknownBranch as exc:
        return _policy_page(422, caps_form=form, caps_errors=_unknown_branch(form, rows, exc.code))
    return _after(answer, "caps-saved", "caps", form)
