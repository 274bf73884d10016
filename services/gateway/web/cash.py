"""The cash counts page: the custodian counts the till by denomination, finance (the CFO above
the limit) decides the variances, everyone who reads floats sees the counts of their scope."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from marshmallow import ValidationError

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api.cash import decide_variance, record_cash_count
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.branches import branch_codes
from services.gateway.schemas import CashCountCreateSchema
from services.gateway.web import bp, decision_of, page
from services.gateway.web.requisitions import after_command
from shared.contracts.permissions import Action, may

# The notes and coins a till holds, largest first (by value in major units).
DENOMINATIONS = {
    "KES": ("1000", "500", "200", "100", "50", "20", "10", "5", "1"),
    "UGX": ("50000", "20000", "10000", "5000", "2000", "1000", "500", "200", "100"),
    "TZS": ("10000", "5000", "2000", "1000", "500", "200", "100"),
    "USD": ("100", "50", "20", "10", "5", "1", "0.25", "0.10", "0.05", "0.01"),
}


@bp.get("/cash-counts")
@permits(Action.READ_FLOATS, sessions_only=True)
def cash_counts_page(status: int = 200, error: str = "", form: Any = None) -> Any:
    actor = current_actor()
    floats = read(reads.floats, actor)
    counts = read(reads.cash_counts, actor)
    return page(
        "cash_counts.html",
        status,
        floats=floats,
        pending=[c for c in counts if c["status"] == "pending"],
        counts=counts,
        branch_codes=branch_codes(),
        denominations=DENOMINATIONS,
        may_count=may(actor, Action.RECORD_CASH_COUNT),
        may_decide=may(actor, Action.DECIDE_VARIANCE),
        me=actor.user_id,
        error=error,
        form=form or {},
    )


@bp.post("/cash-counts")
@permits(Action.RECORD_CASH_COUNT, sessions_only=True)
def count_cash() -> Any:
    form = request.form
    floats = {f"{f['branch_code']} {f['balance']['currency']}": f for f in read(reads.floats, current_actor())}
    chosen = floats.get(form.get("float", ""))
    if chosen is None:
        return cash_counts_page(400, "Choose a float.", form)
    currency = chosen["balance"]["currency"]
    notes = {}
    for value in DENOMINATIONS.get(currency, ()):
        typed = form.get(f"n-{value}", "").strip()
        if typed:
            if not typed.isdigit():
                return cash_counts_page(400, f"How many {value}s: a whole number.", form)
            notes[value] = int(typed)
    try:
        data = CashCountCreateSchema().load(
            {"currency": currency, "denominations": notes, "comment": form.get("comment", "")}
        )
    except ValidationError:
        return cash_counts_page(400, "Enter how many of at least one note or coin (at most 1,000,000 of each).", form)
    return _back(record_cash_count(chosen["branch_id"], data), form)


@bp.post("/cash-counts/<uuid:count_id>/decision")
@permits(Action.DECIDE_VARIANCE, sessions_only=True)
def variance_decision(count_id: uuid.UUID) -> Any:
    data = decision_of(request.form)
    if isinstance(data, str):
        return cash_counts_page(400, data)
    return _back(decide_variance(count_id, data))


def _back(answer: Any, form: Any = None) -> Any:
    return after_command(answer, lambda status, why: cash_counts_page(status, why, form), "cash-counts")
