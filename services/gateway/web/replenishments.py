"""Replenishments: treasury asks for money for a float, finance or the CFO decides; everyone
who reads floats sees the requests of their scope (the ledger's, projected)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from marshmallow import ValidationError
from sqlalchemy import select

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api import ctx
from services.gateway.api.floats import decide_replenishment, request_replenishment
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.models import User
from services.gateway.schemas import ReplenishSchema
from services.gateway.web import bp, decision_of, page
from services.gateway.web.formatting import BadAmount, minor_units
from services.gateway.web.requisitions import after_command
from shared.contracts.permissions import Action, may


@bp.get("/replenishments")
@permits(Action.READ_FLOATS, sessions_only=True)
def replenishments() -> Any:
    return replenishments_page()


def replenishments_page(status: int = 200, error: str = "", form: Any = None) -> Any:
    """The requests waiting for a decision (oldest first), the decided ones, and treasury's form."""
    actor = current_actor()
    floats = read(reads.floats, actor)
    items = _annotated(read(reads.replenishments, actor), floats, actor.user_id)
    return page(
        "replenishments.html",
        status,
        waiting=sorted((i for i in items if i["status"] == "requested"), key=lambda i: i["requested_at"]),
        decided=[i for i in items if i["status"] != "requested"],
        floats=floats,
        may_request=may(actor, Action.REQUEST_REPLENISHMENT),
        may_decide=may(actor, Action.DECIDE_REPLENISHMENT),
        error=error,
        form=form or {},
    )


def _annotated(items: list[dict[str, Any]], floats: list[dict[str, Any]], me: str) -> list[dict[str, Any]]:
    """Each request with its branch's code and the names of who asked and who decided."""
    names = _names({i["requested_by"] for i in items} | {i["decided_by"] for i in items if i["decided_by"]})
    codes = {f["branch_id"]: f["branch_code"] for f in floats}
    for item in items:
        item["branch_code"] = codes.get(item["branch_id"], "")
        item["requester_name"] = names.get(item["requested_by"], "")
        item["decider_name"] = names.get(item["decided_by"] or "", "")
        item["mine"] = item["requested_by"] == me
    return items


def _names(user_ids: set[str]) -> dict[str, str]:
    keys = [uuid.UUID(u) for u in user_ids if u]
    if not keys:
        return {}
    with ctx().db.reader() as connection:
        return {
            str(i): name for i, name in connection.execute(select(User.id, User.full_name).where(User.id.in_(keys)))
        }


@bp.post("/replenishments")
@permits(Action.REQUEST_REPLENISHMENT, sessions_only=True)
def ask_for_replenishment() -> Any:
    """Treasury's request: which float, how much, why."""
    form = request.form
    floats = {f"{f['branch_code']} {f['balance']['currency']}": f for f in read(reads.floats, current_actor())}
    chosen = floats.get(form.get("float", ""))
    if chosen is None:
        return replenishments_page(400, "Choose a float.", form)
    currency = chosen["balance"]["currency"]
    try:
        data = ReplenishSchema().load(
            {
                "amount": {"minor_units": minor_units(form.get("amount", ""), currency), "currency": currency},
                "comment": form.get("comment", ""),
            }
        )
    except (BadAmount, ValidationError) as exc:
        return replenishments_page(400, _why(exc), form)
    return _back(request_replenishment(chosen["branch_id"], data), form)


@bp.post("/replenishments/<uuid:request_id>/decision")
@permits(Action.DECIDE_REPLENISHMENT, sessions_only=True)
def replenishment_decision(request_id: uuid.UUID) -> Any:
    """Finance or the CFO approves (the money moves to the float) or rejects."""
    data = decision_of(request.form)
    if isinstance(data, str):
        return replenishments_page(400, data)
    return _back(decide_replenishment(request_id, data))


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field}: {' '.join(map(str, m))}" for field, m in _messages(exc.messages))
    return str(exc)


def _messages(messages: Any) -> list[tuple[str, list[Any]]]:
    found: list[tuple[str, list[Any]]] = []
    for key, value in messages.items() if isinstance(messages, dict) else []:
        found += _messages(value) if isinstance(value, dict) else [(key, value if isinstance(value, list) else [value])]
    return found


def _back(answer: Any, form: Any = None) -> Any:
    """The list again: with the refusal in words, or following a command still running."""
    return after_command(answer, lambda status, why: replenishments_page(status, why, form), "replenishments")
