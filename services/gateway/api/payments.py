"""``/api/v1/otp/...`` and ``/api/v1/requisitions/{id}/payment``: treasury's authenticator and payments."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from services.gateway import problems, reads
from services.gateway.api import Blueprint, ctx
from services.gateway.api.commands import accepted
from services.gateway.api.replies import Behind, call, command, found, read, reply_response
from services.gateway.auth import current_actor
from services.gateway.idempotency import idempotent
from services.gateway.schemas import AcceptedSchema, ProblemSchema
from shared.contracts import catalog
from shared.contracts.money import MoneySchema
from shared.contracts.payloads import PayeeSchema
from shared.contracts.payment import SealedEnrolmentError, unseal_enrolment

blp = Blueprint("payments", __name__, url_prefix="/api/v1", description="Treasury: OTP enrolment and payments")

OTP_CODE = validate.Regexp(r"^[0-9]{6}$", error="A 6-digit code from your authenticator.")


class OtpActivationSchema(Schema):
    """Body of ``POST /api/v1/otp/activation``."""

    code = fields.String(required=True, validate=OTP_CODE, metadata={"example": "492039"})


class PaymentExecuteSchema(Schema):
    """Body of ``POST /api/v1/requisitions/{id}/payment``."""

    otp = fields.String(required=True, validate=OTP_CODE, metadata={"example": "492039"})


class EnrolmentSchema(Schema):
    """A treasury user's authenticator; the URI and QR code are shown once, at enrolment."""

    user_id = fields.String()
    status = fields.String(metadata={"description": "pending until activated with a first code, then active"})
    issuer = fields.String()
    digits = fields.Integer()
    period = fields.Integer()
    created_at = fields.String()
    activated_at = fields.String(allow_none=True)
    provisioning_uri = fields.String(metadata={"description": "otpauth:// URI (enrolment only; holds the secret)"})
    qr_svg = fields.String(metadata={"description": "The URI as an SVG QR code (enrolment only)"})


class ProviderAttemptSchema(Schema):
    number = fields.Integer()
    provider = fields.String()
    outcome = fields.String(metadata={"description": "paid, transient or permanent"})
    detail = fields.String()
    at = fields.String()


class PaymentExecutionSchema(Schema):
    number = fields.Integer()
    executor_id = fields.String()
    executor_name = fields.String()
    started_at = fields.String()
    finished_at = fields.String(allow_none=True)
    outcome = fields.String()
    reason = fields.String()
    attempts = fields.List(fields.Nested(ProviderAttemptSchema))


class PaymentSchema(Schema):
    """A requisition's payment as the API shows it."""

    id = fields.String()
    requisition_id = fields.String()
    branch_id = fields.String()
    state = fields.String(metadata={"description": "processing, completed or failed"})
    amount = fields.Nested(MoneySchema)
    payee = fields.Nested(PayeeSchema)
    executions = fields.Integer()
    executions_left = fields.Integer()
    executor_id = fields.String()
    executor_name = fields.String()
    provider = fields.String(allow_none=True)
    provider_reference = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    completed_at = fields.String(allow_none=True)
    history = fields.List(fields.Nested(PaymentExecutionSchema))


def _retry_after(response: Response) -> Response:
    """A lockout (429) says when to come back, as the problem's ``retry_after`` does."""
    if response.status_code == 429:
        retry_after = json.loads(response.get_data()).get("retry_after")
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
    return response


@blp.route("/otp/enrolment")
class OtpEnrolment(MethodView):
    @blp.response(201, EnrolmentSchema)
    @blp.alt_response(202, schema=AcceptedSchema, description="Accepted; enrol again if it does not complete")
    @blp.alt_response(403, schema=ProblemSchema, description="Not a treasury user")
    @blp.alt_response(409, schema=ProblemSchema, description="An active authenticator exists already")
    def post(self) -> Response:
        """Enrol an authenticator app (treasury): its secret is shown once, as a URI and a QR code.

        A pending (not yet activated) enrolment is replaced by a new one.
        """
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


@blp.route("/otp/activation")
class OtpActivation(MethodView):
    @blp.arguments(OtpActivationSchema)
    @blp.response(200, EnrolmentSchema)
    @blp.alt_response(202, schema=AcceptedSchema, description="Accepted; the outcome is not known yet")
    @blp.alt_response(400, schema=ProblemSchema, description="Malformed body")
    @blp.alt_response(403, schema=ProblemSchema, description="Not a treasury user")
    @blp.alt_response(409, schema=ProblemSchema, description="Nothing to activate, or the code was used already")
    @blp.alt_response(422, schema=ProblemSchema, description="The code is not valid")
    def post(self, data: dict[str, Any]) -> Response:
        """Activate the enrolled authenticator with a first code from it."""
        return command(catalog.ACTIVATE_OTP, {"code": data["code"]}, resource="otp-activation")


@blp.route("/requisitions/<uuid:requisition_id>/payment")
class RequisitionPayment(MethodView):
    @idempotent
    @blp.arguments(PaymentExecuteSchema)
    @blp.response(201, PaymentSchema)
    @blp.alt_response(202, schema=AcceptedSchema, description="Accepted; the outcome is not known yet")
    @blp.alt_response(400, schema=ProblemSchema, description="Malformed body")
    @blp.alt_response(403, schema=ProblemSchema, description="Not treasury, or segregation of duties (see rule)")
    @blp.alt_response(404, schema=ProblemSchema, description="No approved requisition with this id")
    @blp.alt_response(
        409, schema=ProblemSchema, description="Not reserved, cancelled, under way, paid, or the code was used"
    )
    @blp.alt_response(422, schema=ProblemSchema, description="Wrong code, or the execution limit is reached")
    @blp.alt_response(429, schema=ProblemSchema, description="Locked out after 5 wrong codes (see Retry-After)")
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Response:
        """Execute the payment of a reserved requisition with a code from your authenticator (treasury).

        Answers with the payment in state ``processing``; a worker calls the provider. A failed
        payment may be executed again with a fresh code, up to the execution limit. Send an
        ``Idempotency-Key`` so a retried request cannot start a second execution.
        """
        # No role check here: the payment service refuses non-treasury users itself and
        # records the attempt, so its audit trail sees every try.
        payload = {"requisition_id": str(requisition_id), "otp": data["otp"]}
        response = command(catalog.EXECUTE_PAYMENT, payload, resource="payment")
        if response.status_code == 201:
            response.headers["Location"] = url_for("payments.RequisitionPayment", requisition_id=requisition_id)
        return _retry_after(response)

    @blp.response(200, PaymentSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="No payment for this requisition in your scope")
    def get(self, requisition_id: uuid.UUID) -> Response:
        """The payment of a requisition, its executions and provider calls."""
        return found(read(reads.payment, current_actor(), str(requisition_id)), "payment for this requisition")
