"""Treasury's payment-run pages: choose the ready payments (by branch, method, amount), see their
count and total, authorise them with one code; follow each run's progress; a second officer
authorises a run above the threshold."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, redirect, request, url_for
from marshmallow import ValidationError

from services.gateway import payment_runs
from services.gateway.access import permits
from services.gateway.api.payment_runs import authorise_run, cancel_run, candidates, start_run
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.branches import UnknownBranch, branch_codes
from services.gateway.run_schemas import CandidateQuerySchema
from services.gateway.web import bp, page, problem_detail
from services.gateway.web.requisitions import follow
from shared.contracts.payloads import PAYEE_METHODS
from shared.contracts.permissions import Action, may

CODE_HINT = "A code is the six digits your app shows now."


def _code() -> str | None:
    code = request.form.get("code", "").strip()
    return code if code.isdigit() and len(code) == 6 else None


def _minor(typed: str) -> int | None:
    """An amount typed in major units ("1,250.50") as minor units; None when blank."""
    cleaned = typed.replace(",", "").strip()
    if not cleaned:
        return None
    major, _, cents = cleaned.partition(".")
    if not major.isdigit() or (cents and not (cents.isdigit() and len(cents) <= 2)) or len(major) > 12:
        raise ValueError(typed)
    return int(major) * 100 + int(cents.ljust(2, "0") or 0)


def _filter_args(args: Any) -> dict[str, Any]:
    """The page's filter (amounts in major units) as the candidates query takes it."""
    query: dict[str, Any] = {k: args[k] for k in ("branch", "method") if args.get(k)}
    for key in ("min_amount", "max_amount"):
        minor = _minor(args.get(key, ""))
        if minor is not None:
            query[key] = minor
    return dict(CandidateQuerySchema().load(query))


@bp.get("/payment-runs")
@permits(Action.READ_PAYMENT_RUNS, sessions_only=True)
def payment_runs_page() -> Any:
    """The latest runs and how far each got."""
    return page(
        "payment_runs.html",
        runs=read(payment_runs.runs),
        branch_codes=branch_codes(),
        may_pay=may(current_actor(), Action.EXECUTE_PAYMENT),
    )


@bp.get("/payment-runs/new")
@permits(Action.EXECUTE_PAYMENT, sessions_only=True)
def new_payment_run(status: int = 200, error: str = "") -> Any:
    """The ready payments the filter keeps, all chosen; the count and total; the code."""
    try:
        found = candidates(_filter_args(request.args))
    except (ValueError, ValidationError):
        found, status, error = (
            {"items": [], "count": 0, "totals": []},
            400,
            "Amounts are in the currency's units, like 1250.50.",
        )
    except UnknownBranch:
        found, status, error = {"items": [], "count": 0, "totals": []}, 400, "Choose a branch from the list."
    return page(
        "payment_run_new.html",
        status,
        found=found,
        args=request.args,
        branch_codes=branch_codes(),
        methods=PAYEE_METHODS,
        error=error,
    )


@bp.post("/payment-runs")
@permits(Action.EXECUTE_PAYMENT, sessions_only=True)
def make_payment_run() -> Any:
    chosen = request.form.getlist("requisition")
    try:
        ids = [uuid.UUID(value) for value in chosen]
    except ValueError:
        return new_payment_run(400, "Choose the payments from the list.")
    if not ids:
        return new_payment_run(400, "Choose at least one payment.")
    code = _code()
    if code is None:
        return new_payment_run(400, CODE_HINT)
    return _to_run(start_run(ids[: payment_runs.MAX_ITEMS], code), new_payment_run)


@bp.get("/payment-runs/<uuid:run_id>")
@permits(Action.READ_PAYMENT_RUNS, sessions_only=True)
def payment_run_page(run_id: uuid.UUID, status: int = 200, error: str = "") -> Any:
    return _run_page("payment_run.html", run_id, status, error)


@bp.get("/payment-runs/<uuid:run_id>/progress")
@permits(Action.READ_PAYMENT_RUNS, sessions_only=True)
def payment_run_progress(run_id: uuid.UUID) -> Any:
    """The run's progress alone (the run page polls it while payments are under way)."""
    return _run_page("payment_run_progress.html", run_id, 200, "")


def _run_page(template: str, run_id: uuid.UUID, status: int, error: str) -> Any:
    run = read(payment_runs.run, str(run_id))
    if run is None:
        return page("message.html", 404, title="Not found", text="No payment run with this id.")
    actor = current_actor()
    return page(
        template,
        status,
        run=run,
        branch_codes=branch_codes(),
        may_check=may(actor, Action.EXECUTE_PAYMENT) and run["maker_id"] != actor.user_id,
        may_cancel=may(actor, Action.EXECUTE_PAYMENT),
        error=error,
    )


@bp.post("/payment-runs/<uuid:run_id>/authorisation")
@permits(Action.EXECUTE_PAYMENT, sessions_only=True)
def authorise_payment_run(run_id: uuid.UUID) -> Any:
    again = lambda status, why: payment_run_page(run_id, status, why)  # noqa: E731
    code = _code()
    if code is None:
        return again(400, CODE_HINT)
    return _to_run(authorise_run(run_id, code), again)


@bp.post("/payment-runs/<uuid:run_id>/cancellation")
@permits(Action.EXECUTE_PAYMENT, sessions_only=True)
def cancel_payment_run(run_id: uuid.UUID) -> Any:
    reason = request.form.get("reason", "").strip()[:500]
    return _to_run(cancel_run(run_id, reason), lambda status, why: payment_run_page(run_id, status, why))


def _to_run(answer: Any, refused: Any) -> Any:
    """After a run's command: the run's page, the page that follows a command still running, or
    the form again with the refusal in words."""
    if isinstance(answer, Response) and answer.status_code >= 400:
        return refused(answer.status_code, problem_detail(answer))
    if isinstance(answer, Response) and answer.status_code == 202:
        return follow(answer, then="payment-runs")
    body, _status, _headers = answer
    return redirect(url_for("web.payment_run_page", run_id=body["id"]), 303)
