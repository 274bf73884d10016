"""The requester's pages: a new requisition, my requisitions, one requisition with its
timeline, and cancelling it; on the API's own reads and commands."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Response, redirect, request, send_file, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api import ctx
from services.gateway.api.replies import command, read
from services.gateway.api.requisitions import attach_receipt, edit_requisition, submit_requisition
from services.gateway.auth import current_actor
from services.gateway.models import Branch
from services.gateway.schemas import RequisitionCreateSchema, RequisitionEditSchema
from services.gateway.web import bp, page, problem_detail
from services.gateway.web.formatting import STATUS_WORDS, BadAmount, minor_units
from shared.contracts import catalog
from shared.contracts.money import CURRENCY_EXPONENTS
from shared.contracts.payloads import CATEGORIES, PAYEE_METHODS
from shared.contracts.permissions import Action, may

# The states in which the requester may still withdraw a requisition.
CANCELLABLE = frozenset({"draft", "submitted", "pending_approval", "pending_urgency_confirmation", "changes_requested"})
CURRENCIES = ("KES", "UGX", "TZS", "USD")
AWAITING_DECISION = frozenset({"pending_approval", "pending_urgency_confirmation"})
PAYABLE = frozenset({"reserved", "payment_failed"})
PAID_OR_PAYING = frozenset({"payment_processing", "paid", "payment_failed"})


SCOPES = {"mine": "My requisitions", "all": "Requisitions in my scope"}


@bp.get("/requisitions")
@permits(Action.READ_REQUISITIONS, sessions_only=True)
def my_requisitions() -> Any:
    """One's own requisitions, or (``?scope=all``) every one the reader's roles cover, newest first;
    ``status`` narrows it."""
    scope = request.args.get("scope", "mine")
    scope = scope if scope in SCOPES else "mine"
    status = request.args.get("status") or None
    status = status if status in STATUS_WORDS else None
    listed = read(
        reads.list_requisitions, current_actor(), scope=scope, status=status, branch_id=None, limit=100, offset=0
    )
    return page(
        "requisitions.html",
        items=listed["items"],
        scope=scope,
        title=SCOPES[scope],
        chosen=status,
        statuses=STATUS_WORDS,
    )


def _my_branches() -> list[tuple[str, str]]:
    ids = [uuid.UUID(b) for b in current_actor().branch_ids]
    with ctx().db.uow() as uow:
        return [
            (b.code, b.name)
            for b in uow.session.scalars(select(Branch).where(Branch.id.in_(ids)).order_by(Branch.code))
        ]


def _form_page(status: int = 200, **values: Any) -> Any:
    values.setdefault("form", request.form if request.method == "POST" else {})
    return page(
        "requisition_new.html",
        status,
        branches=_my_branches(),
        categories=CATEGORIES,
        methods=PAYEE_METHODS,
        currencies=CURRENCIES,
        **values,
    )


@bp.get("/requisitions/new")
@permits(Action.SUBMIT_REQUISITION, sessions_only=True)
def new_requisition() -> Any:
    return _form_page()


def _body_of(form: Any) -> dict[str, Any]:
    """The API's body from the form's fields."""
    currency = form.get("currency", "")
    payee = {"name": form.get("payee_name", ""), "method": form.get("payee_method", "")}
    if form.get("payee_account"):
        payee["account_ref"] = form["payee_account"]
    body: dict[str, Any] = {
        "branch": form.get("branch", ""),
        "amount": {"minor_units": minor_units(form.get("amount", ""), currency), "currency": currency},
        "category": form.get("category", ""),
        "purpose": form.get("purpose", ""),
        "payee": payee,
        "draft": form.get("action") == "draft",
    }
    if form.get("urgent"):
        body.update(urgent=True, urgency_reason=form.get("urgency_reason", ""))
    return body


@bp.post("/requisitions/new")
@permits(Action.SUBMIT_REQUISITION, sessions_only=True)
def submit() -> Any:
    try:
        data = RequisitionCreateSchema().load(_body_of(request.form))
    except BadAmount as exc:
        return _form_page(400, errors={"amount": [str(exc)]})
    except ValidationError as exc:
        return _form_page(400, errors=_flat(exc.messages))
    answer = submit_requisition(data)
    if isinstance(answer, Response):
        if answer.status_code == 202:
            return follow(answer)
        return _form_page(answer.status_code, error=problem_detail(answer))
    return redirect(url_for("web.requisition", requisition_id=answer[0]["id"]), 303)


def _flat(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as one list per form field (``payee.name`` is ``payee_name``)."""
    flat: dict[str, list[str]] = {}
    for key, value in messages.items() if isinstance(messages, dict) else []:
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}_"))
        else:
            flat[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return flat


@bp.get("/requisitions/<uuid:requisition_id>")
@permits(Action.READ_REQUISITIONS, sessions_only=True)
def requisition(requisition_id: uuid.UUID) -> Any:
    return requisition_page(requisition_id)


def requisition_page(requisition_id: uuid.UUID, status: int = 200, error: str = "") -> Any:
    """A requisition with its timeline, and what the reader may do with it now."""
    actor = current_actor()
    found = read(reads.get_requisition, actor, str(requisition_id))
    if found is None:
        return page("message.html", 404, title="Not found", text="There is no such requisition in your scope.")
    mine = found["requester_id"] == actor.user_id
    payment = read(reads.payment, actor, str(requisition_id)) if found["status"] in PAID_OR_PAYING else None
    deciding = not mine and may(actor, Action.DECIDE_APPROVAL) and found["status"] in AWAITING_DECISION
    return page(
        "requisition.html",
        status,
        r=found,
        payment=payment,
        error=error,
        may_cancel=mine and found["status"] in CANCELLABLE,
        may_edit=mine and found["status"] in EDITABLE,
        may_decide=deciding,
        urgency=found["status"] == "pending_urgency_confirmation",
        may_pay=not mine and may(actor, Action.EXECUTE_PAYMENT) and found["status"] in PAYABLE,
    )


# The pages a command's page may go back to (``?then=``), besides a requisition's.
THEN = {
    "replenishments": "web.replenishments",
    "alerts": "web.alerts_page",
    "cash-counts": "web.cash_counts_page",
    "payment-runs": "web.payment_runs_page",
}


def after_command(answer: Any, refused: Callable[[int, str], Any], then: str) -> Any:
    """After a command from a list page: the page again with the refusal in words (``refused``),
    the page that follows a command still running, or the page itself (``THEN[then]``)."""
    if isinstance(answer, Response) and answer.status_code >= 400:
        return refused(answer.status_code, problem_detail(answer))
    if isinstance(answer, Response) and answer.status_code == 202:
        return follow(answer, then=then)
    return redirect(url_for(THEN[then]), 303)


def follow(answer: Response, requisition_id: uuid.UUID | None = None, then: str | None = None) -> Response:
    """From a 202 to the page that follows the command (``web.pending``): about this requisition
    if known, else back to the page ``then`` names (``web.pending.THEN``)."""
    message_id = (answer.get_json(silent=True) or {})["message_id"]
    args = {"requisition": str(requisition_id)} if requisition_id else {"then": then} if then else {}
    return redirect(url_for("web.pending", message_id=message_id, **args), 303)  # type: ignore[return-value]


def back_to_requisition(requisition_id: uuid.UUID, answer: Any) -> Any:
    """After a command on a requisition: its page again, saying why when it was refused."""
    if isinstance(answer, Response) and answer.status_code >= 400:
        return requisition_page(requisition_id, status=answer.status_code, error=problem_detail(answer))
    if isinstance(answer, Response) and answer.status_code == 202:
        return follow(answer, requisition_id)
    return redirect(url_for("web.requisition", requisition_id=requisition_id), 303)


@bp.post("/requisitions/<uuid:requisition_id>/cancel")
@permits(Action.CANCEL_REQUISITION, sessions_only=True)
def cancel(requisition_id: uuid.UUID) -> Any:
    comment = request.form.get("comment", "").strip() or "Cancelled by the requester"
    answer = command(catalog.CANCEL_REQUISITION, {"id": str(requisition_id), "comment": comment[:500]})
    return back_to_requisition(requisition_id, answer)


# -- drafts, changes and receipts ------------------------------------------------------------

EDITABLE = frozenset({"draft", "changes_requested"})


def _form_of(found: dict[str, Any]) -> dict[str, str]:
    """A requisition as the form's fields, to edit it."""
    exponent = CURRENCY_EXPONENTS[found["amount"]["currency"]]
    major = Decimal(found["amount"]["minor_units"]).scaleb(-exponent)
    return {
        "branch": found["branch_code"],
        "amount": f"{major:.{exponent}f}",
        "currency": found["amount"]["currency"],
        "category": found["category"],
        "purpose": found["purpose"],
        "payee_name": found["payee"]["name"],
        "payee_method": found["payee"]["method"],
        "payee_account": found["payee"].get("account_ref", ""),
        "urgent": "1" if found["urgent"] else "",
        "urgency_reason": found["urgency_reason"],
    }


@bp.get("/requisitions/<uuid:requisition_id>/edit")
@permits(Action.EDIT_REQUISITION, sessions_only=True)
def edit(requisition_id: uuid.UUID) -> Any:
    found = read(reads.get_requisition, current_actor(), str(requisition_id))
    if found is None or found["status"] not in EDITABLE:
        return page("message.html", 404, title="Not found", text="There is no requisition of yours to change here.")
    return _form_page(form=_form_of(found), editing=found)


@bp.post("/requisitions/<uuid:requisition_id>/edit")
@permits(Action.EDIT_REQUISITION, sessions_only=True)
def save(requisition_id: uuid.UUID) -> Any:
    """Save the changes; with "Submit", send it (again) for approval."""
    found = read(reads.get_requisition, current_actor(), str(requisition_id))
    if found is None:
        return page("message.html", 404, title="Not found", text="There is no requisition of yours to change here.")
    try:
        body = _body_of(request.form)
        body.pop("branch")
        body.pop("draft")
        data = RequisitionEditSchema().load(body)
    except BadAmount as exc:
        return _form_page(400, errors={"amount": [str(exc)]}, editing=found)
    except ValidationError as exc:
        return _form_page(400, errors=_flat(exc.messages), editing=found)
    answer = edit_requisition(requisition_id, data)
    if isinstance(answer, Response) and answer.status_code >= 400:
        return _form_page(answer.status_code, error=problem_detail(answer), editing=found)
    if request.form.get("action") == "submit":
        return submit_again(requisition_id)
    return redirect(url_for("web.requisition", requisition_id=requisition_id), 303)


@bp.post("/requisitions/<uuid:requisition_id>/submit")
@permits(Action.EDIT_REQUISITION, sessions_only=True)
def submit_again(requisition_id: uuid.UUID) -> Any:
    """Submit a draft, or resubmit after the changes asked for."""
    answer = command(catalog.SUBMIT_DRAFT, {"id": str(requisition_id), "comment": ""})
    return back_to_requisition(requisition_id, answer)


@bp.post("/requisitions/<uuid:requisition_id>/receipts")
@permits(Action.EDIT_REQUISITION, sessions_only=True)
def add_receipt(requisition_id: uuid.UUID) -> Any:
    """A photo of the receipt (a phone may take it there and then) or its PDF."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return requisition_page(requisition_id, status=400, error="Choose a file, or take a photo of the receipt.")
    answer = attach_receipt(requisition_id, upload)
    return back_to_requisition(requisition_id, answer)


@bp.get("/requisitions/<uuid:requisition_id>/receipts/<sha256>")
@permits(Action.READ_REQUISITIONS, sessions_only=True)
def receipt(requisition_id: uuid.UUID, sha256: str) -> Any:
    """A receipt of a requisition the reader may see, as it was uploaded."""
    found = read(reads.get_requisition, current_actor(), str(requisition_id))
    attached = {r["sha256"]: r for r in (found or {}).get("receipts", [])}
    if sha256 not in attached:
        return page("message.html", 404, title="Not found", text="There is no such receipt in your scope.")
    path = ctx().settings.var_dir / "receipts" / sha256[:2] / sha256
    return send_file(path, mimetype=attached[sha256]["content_type"], download_name=attached[sha256]["filename"])
