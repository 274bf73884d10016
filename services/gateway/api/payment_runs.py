"""``/api/v1/payment-runs``: treasury pays many ready requisitions with one one-time code.

Select the ready payments (``/candidates``: by branch, payee method, amount), see their count
and total, and authorise the run with your code; a run above the configured total waits for a
second treasury officer's code. The payment service pays each included item exactly once and
leaves out, with the reason, any it may not pay; the run's progress is its payments'.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, url_for
from flask.views import MethodView

from services.gateway import payment_runs
from services.gateway.access import permits
from services.gateway.api import LOCATION_HEADER, RETRY_AFTER_HEADER, Blueprint, ctx
from services.gateway.api.payments import retry_after
from services.gateway.api.replies import Answer, command, found, read
from services.gateway.auth import current_actor
from services.gateway.branches import branch
from services.gateway.idempotency import idempotent
from services.gateway.payment_runs import Filter
from services.gateway.run_schemas import (
    CandidateListSchema,
    CandidateQuerySchema,
    RunAuthorisationSchema,
    RunCancellationSchema,
    RunCreateSchema,
    RunListSchema,
    RunSchema,
)
from shared.contracts import catalog
from shared.contracts.permissions import Action

blp = Blueprint("payment_runs", __name__, url_prefix="/api/v1/payment-runs", description="Payment runs (treasury)")

CODE_PROBLEMS = "Wrong code; or the Idempotency-Key was used for another request"


def candidates(args: dict[str, Any]) -> dict[str, Any]:
    """The ready payments a run may take (the API's and the page's one read)."""
    wanted = Filter(
        branch_id=branch(args["branch"]).id if args.get("branch") else None,
        method=args.get("method"),
        min_minor=args.get("min_amount"),
        max_minor=args.get("max_amount"),
    )
    return read(payment_runs.candidates, current_actor(), wanted)  # type: ignore[no-any-return]


def _limited() -> Response | None:
    return ctx().rate_limits.check("one_time_code", current_actor().user_id, what="codes")  # type: ignore[no-any-return]


def start_run(requisition_ids: list[uuid.UUID], code: str) -> Answer:
    """Authorise a run of these requisitions with the caller's code."""
    limited = _limited()
    if limited is not None:
        return limited
    payload = {"requisition_ids": [str(i) for i in requisition_ids], "otp": code}
    return _with_progress(command(catalog.START_PAYMENT_RUN, payload, resource="payment-run"))


def authorise_run(run_id: uuid.UUID, code: str) -> Answer:
    """A second officer's code starts a run that waits for it."""
    limited = _limited()
    if limited is not None:
        return limited
    payload = {"run_id": str(run_id), "otp": code}
    return _with_progress(command(catalog.AUTHORISE_PAYMENT_RUN, payload, resource="payment-run"))


def cancel_run(run_id: uuid.UUID, reason: str) -> Answer:
    return _with_progress(
        command(catalog.CANCEL_PAYMENT_RUN, {"run_id": str(run_id), "reason": reason}, resource="payment-run")
    )


def _with_progress(answer: Answer) -> Answer:
    """A run as a command answers it, with the progress a read shows (nothing paid yet)."""
    if isinstance(answer, Response):
        return retry_after(answer)
    body, status, headers = answer
    body = payment_runs.with_progress(body, {})
    headers = {**headers, "Location": url_for("payment_runs.PaymentRun", run_id=body["id"])}
    return body, status, headers


@blp.route("/candidates")
class Candidates(MethodView):
    @permits(Action.EXECUTE_PAYMENT)
    @blp.arguments(CandidateQuerySchema, location="query")
    @blp.response(200, CandidateListSchema)
    @blp.problem(400, "An unknown payee method, or an amount that is not a whole number of minor units")
    @blp.problem(403, "Not treasury")
    @blp.problem(422, "No branch has that code")
    def get(self, args: dict[str, Any]) -> Any:
        """Requisitions ready to pay (reserved, or failed with an execution left), oldest first, at most
        200, with their count and total per currency. Those you requested or approved are not listed:
        someone else in treasury pays them."""
        return candidates(args)


@blp.route("")
class PaymentRuns(MethodView):
    @permits(Action.READ_PAYMENT_RUNS)
    @blp.response(200, RunListSchema)
    @blp.problem(403, "Not treasury, finance, CFO or auditor")
    def get(self) -> Any:
        """The latest 50 runs, newest first, each with its progress."""
        return {"items": read(payment_runs.runs)}

    @permits(Action.EXECUTE_PAYMENT)
    @idempotent
    @blp.arguments(RunCreateSchema)
    @blp.response(201, RunSchema, headers={"Location": LOCATION_HEADER})
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not treasury")
    @blp.problem(409, "The code was used already, or a request with this Idempotency-Key is in flight")
    @blp.problem(422, "None of the requisitions can be paid now (see left), or " + CODE_PROBLEMS)
    @blp.problem(429, "Locked out after 5 wrong codes (see Retry-After)", headers={"Retry-After": RETRY_AFTER_HEADER})
    def post(self, data: dict[str, Any]) -> Answer:
        """Pay these requisitions with one code from your authenticator.

        Each is checked as a payment on its own is (reserved, not paid or under way, an execution
        left, segregation of duties); those that fail a check are left out, with the reason. Up
        to the configured total the run starts at once (``started``); above it, it waits for a
        second treasury officer (``awaiting_second``). Send an ``Idempotency-Key``.
        """
        return start_run(data["requisition_ids"], data["otp"])


@blp.route("/<uuid:run_id>")
class PaymentRun(MethodView):
    @permits(Action.READ_PAYMENT_RUNS)
    @blp.response(200, RunSchema)
    @blp.problem(403, "Not treasury, finance, CFO or auditor")
    @blp.problem(404, "No such run")
    def get(self, run_id: uuid.UUID) -> Any:
        """A run: each item's outcome (waiting, processing, paid, failed, left out) and the counts."""
        return found(read(payment_runs.run, str(run_id)), "payment run")


@blp.route("/<uuid:run_id>/authorisation")
class RunAuthorisation(MethodView):
    @permits(Action.EXECUTE_PAYMENT)
    @idempotent
    @blp.arguments(RunAuthorisationSchema)
    @blp.response(200, RunSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not treasury; the run's maker; or you requested or approved one of its payments")
    @blp.problem(404, "No such run")
    @blp.problem(409, "Not waiting for a second authorisation, or the code was used already")
    @blp.problem(422, CODE_PROBLEMS)
    @blp.problem(429, "Locked out after 5 wrong codes (see Retry-After)", headers={"Retry-After": RETRY_AFTER_HEADER})
    def post(self, data: dict[str, Any], run_id: uuid.UUID) -> Answer:
        """Authorise a run above the threshold as its second treasury officer (maker-checker): it starts.

        Items paid, cancelled or started elsewhere since the run was made are left out now.
        """
        return authorise_run(run_id, data["otp"])


@blp.route("/<uuid:run_id>/cancellation")
class RunCancellation(MethodView):
    @permits(Action.EXECUTE_PAYMENT)
    @idempotent
    @blp.arguments(RunCancellationSchema)
    @blp.response(200, RunSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not treasury")
    @blp.problem(404, "No such run")
    @blp.problem(409, "Not waiting for a second authorisation")
    @blp.problem(422, "The Idempotency-Key was used for another request")
    def post(self, data: dict[str, Any], run_id: uuid.UUID) -> Answer:
        """Drop a run still waiting for its second officer (nothing of it was paid)."""
        return cancel_run(run_id, data["reason"])
