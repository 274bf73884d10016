"""``/api/v1/otp/...`` and ``/api/v1/requisitions/{id}/payment``: treasury's authenticator and payments."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response, url_for
from flask.views import MethodView

from services.gateway import problems, reads
from services.gateway.access import permits
from services.gateway.api import LOCATION_HEADER, RETRY_AFTER_HEADER, Blueprint, ctx
from services.gateway.api.commands import accepted
from services.gateway.api.replies import Answer, Behind, call, command, found, read, reply_response
from services.gateway.api.session import complete_sign_in
from services.gateway.auth import current_actor, current_principal
from services.gateway.idempotency import idempotent
from services.gateway.schemas import EnrolmentSchema, OtpActivationSchema, PaymentExecuteSchema, PaymentSchema
from services.gateway.security import EventType
from services.gateway.sessions import Stage
from shared.contracts import catalog
from shared.contracts.payment import SealedEnrolmentError, unseal_enrolment
from shared.contracts.permissions import Action

blp = Blueprint(
    "payments",
    __name__,
    url_prefix="/api/v1",
    description="Authenticators (treasury, finance, CFO, admin) and payments",
)

# A privileged user without an authenticator enrols one part-way through signing in.
ENROLLING = (Stage.ENROL, Stage.SIGNED_IN)


def retry_after(answer: Answer) -> Answer:
    """A lockout (429) says when to come back, as the problem's ``retry_after`` does."""
    if isinstance(answer, Response) and answer.status_code == 429:
        retry_after = json.loads(answer.get_data()).get("retry_after")
        if retry_after is not None:
            answer.headers["Retry-After"] = str(retry_after)
    return answer


def start_enrolment() -> Answer:
    """Enrol an authenticator for the caller: its secret, unsealed for this once (the API's and
    the enrolment page's one path)."""
    actor = current_actor()
    context = ctx()
    try:
        message_id, reply = call(catalog.ENROLL_OTP, {}, actor)
    except Behind as behind:
        return behind.response()
    if reply is None:
        return accepted(message_id, actor, "otp-enrolment")
    if reply["status"] != 201:
        return reply_response(reply)
    body = dict(reply["body"])
    try:
        # The payment service sealed the secret for this hop (see seal_enrolment).
        body.update(unseal_enrolment(context.settings.otp_encryption_key, body.pop("sealed")))
    except SealedEnrolmentError as exc:
        # The gateway and the payment service disagree on PETTYCASH_OTP_ENCRYPTION_KEY.
        return problems.internal_error(exc)
    return reply_response({"status": 201, "body": body})


def activate(code: str) -> Answer:
    """Activate the caller's enrolled authenticator with its first code; new recovery codes, and
    a sign-in that waited for this enrolment complete."""
    principal = current_principal()
    context = ctx()
    limited = context.rate_limits.check("one_time_code", principal.actor.user_id, what="codes")
    if limited is not None:
        return limited
    answer = command(catalog.ACTIVATE_OTP, {"code": code}, resource="otp-activation")
    if isinstance(answer, Response):
        return answer
    body, status, headers = answer
    context.security.record(
        EventType.SECOND_FACTOR_ENROLLED,
        actor=principal.actor,
        subject=(principal.actor.user_id, principal.actor.username),
    )
    body = {**body, "recovery_codes": context.accounts.new_recovery_codes(principal.actor)}
    if principal.stage == Stage.ENROL:
        context.accounts.second_factor_passed(principal.actor, "enrolment")
        complete_sign_in()
    return body, status, headers


@blp.route("/otp/enrolment")
class OtpEnrolment(MethodView):
    @permits(Action.ENROL_SECOND_FACTOR, stages=ENROLLING)
    @blp.response(201, EnrolmentSchema)
    @blp.accepted("Accepted; enrol again if it does not complete")
    @blp.problem(403, "Not a treasury user")
    @blp.problem(409, "An active authenticator exists already")
    def post(self) -> Answer:
        """Enrol an authenticator app (treasury, finance, CFO, admin): its secret is shown once, as a
        URI and a QR code. It signs you in (your second factor) and, for treasury, pays.

        A pending (not yet activated) enrolment is replaced by a new one.
        """
        return start_enrolment()


@blp.route("/otp/activation")
class OtpActivation(MethodView):
    @permits(Action.ENROL_SECOND_FACTOR, stages=ENROLLING)
    @blp.arguments(OtpActivationSchema)
    @blp.response(200, EnrolmentSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "Not a treasury user")
    @blp.problem(409, "Nothing to activate, already active, or the code was used already")
    @blp.problem(422, "The code is not valid")
    def post(self, data: dict[str, Any]) -> Answer:
        """Activate the enrolled authenticator with a first code from it.

        Answers with recovery codes (shown this once; each stands in for the authenticator at
        one sign-in). A sign-in that waited for this enrolment is complete.
        """
        return activate(data["code"])


def execute_payment(requisition_id: uuid.UUID, code: str) -> Answer:
    """Execute a reserved requisition's payment with a one-time code (the API's and the pay
    page's one path)."""
    limited = ctx().rate_limits.check("one_time_code", current_actor().user_id, what="codes")
    if limited is not None:
        return limited
    answer = command(catalog.EXECUTE_PAYMENT, {"requisition_id": str(requisition_id), "otp": code}, resource="payment")
    return retry_after(answer) if isinstance(answer, Response) else answer


@blp.route("/requisitions/<uuid:requisition_id>/payment")
class RequisitionPayment(MethodView):
    @permits(Action.EXECUTE_PAYMENT)
    @idempotent
    @blp.arguments(PaymentExecuteSchema)
    @blp.response(201, PaymentSchema, headers={"Location": LOCATION_HEADER})
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not treasury, or segregation of duties (see rule)")
    @blp.problem(404, "No approved requisition with this id")
    @blp.problem(
        409,
        "Not reserved, cancelled, under way, paid, or the code was used; or a request with this Idempotency-Key "
        "is in flight",
    )
    @blp.problem(
        422, "Wrong code, or the execution limit is reached; or the Idempotency-Key was used for another request"
    )
    @blp.problem(429, "Locked out after 5 wrong codes (see Retry-After)", headers={"Retry-After": RETRY_AFTER_HEADER})
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Execute the payment of a reserved requisition with a code from your authenticator (treasury).

        Answers with the payment in state ``processing``; a worker calls the provider. A failed
        payment may be executed again with a fresh code, up to the execution limit. Send an
        ``Idempotency-Key`` so a retried request cannot start a second execution.
        """
        answer = execute_payment(requisition_id, data["otp"])
        if not isinstance(answer, Response):
            body, status, headers = answer
            if status == 201:
                headers = {**headers, "Location": url_for("payments.RequisitionPayment", requisition_id=requisition_id)}
            return body, status, headers
        return answer

    @permits(Action.READ_PAYMENTS)
    @blp.response(200, PaymentSchema)
    @blp.problem(404, "No payment for this requisition in your scope")
    def get(self, requisition_id: uuid.UUID) -> Any:
        """The payment of a requisition, its executions and provider calls."""
        return found(read(reads.payment, current_actor(), str(requisition_id)), "payment for this requisition")
