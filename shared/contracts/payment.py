"""Payloads of the payment service's commands, queries and events, and the enrolment seal."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from marshmallow import Schema, fields, validate

from shared.contracts.money import MoneySchema

# How long a sealed enrolment stays readable: long enough for the gateway to answer the
# request that asked for it, short enough that a stored reply is useless later.
ENROLMENT_SEAL_TTL_SECONDS = 600


class PaymentStartedPayload(Schema):
    """Event: a treasury user's OTP was accepted; disbursement is under way."""

    requisition_id = fields.UUID(required=True)
    payment_id = fields.UUID(required=True)
    executor_id = fields.String(required=True)
    executor_name = fields.String(required=True)
    execution = fields.Integer(load_default=1, metadata={"description": "1 for the first execution, 2 for a retry..."})


class PaymentCompletedPayload(Schema):
    """Event: the provider paid; the ledger posts the hold."""

    requisition_id = fields.UUID(required=True)
    payment_id = fields.UUID(required=True)
    amount = fields.Nested(MoneySchema, required=True)
    provider = fields.String(required=True)
    provider_reference = fields.String(required=True)
    executor_id = fields.String(required=True)


class PaymentFailedPayload(Schema):
    """Event: an execution failed for good; ``final`` when no retry is left (the hold is voided)."""

    requisition_id = fields.UUID(required=True)
    payment_id = fields.UUID(required=True)
    reason = fields.String(required=True)
    final = fields.Boolean(required=True)
    executions_left = fields.Integer(required=True)


class OtpCodePayload(Schema):
    """Command ``payment.activate_otp``: the first code proves the authenticator works."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))


class SecondFactorPayload(Schema):
    """Command ``payment.verify_second_factor``: a sign-in's code from the user's authenticator.

    The code is checked as a payment's is (one use per time step, the same run of failures and
    lockout), and its step is spent, so one code signs in or pays, never both.
    """

    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))


class ResetAuthenticatorPayload(Schema):
    """Command ``payment.reset_authenticator``: forget a user's authenticator (an admin, or the
    user after a step-up at the gateway); they enrol a new one."""

    user_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ExecutePaymentPayload(Schema):
    """Command ``payment.execute_payment`` (treasury): pay a reserved requisition."""

    requisition_id = fields.UUID(required=True)
    otp = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))


class StartPaymentRunPayload(Schema):
    """Command ``payment.start_payment_run`` (treasury): pay these reserved requisitions with one code."""

    requisition_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=200))
    otp = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))


class AuthorisePaymentRunPayload(Schema):
    """Command ``payment.authorise_payment_run``: a second treasury officer's code starts a run above the threshold."""

    run_id = fields.UUID(required=True)
    otp = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))


class CancelPaymentRunPayload(Schema):
    """Command ``payment.cancel_payment_run``: drop a run still waiting for its second officer."""

    run_id = fields.UUID(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class PaymentRunIdPayload(Schema):
    """Job ``payment.launch_payment_run``: start the payments of a run just authorised."""

    run_id = fields.UUID(required=True)


class PaymentIdPayload(Schema):
    """Job ``payment.disburse_payment``."""

    payment_id = fields.UUID(required=True)


class PaymentIdsPayload(Schema):
    """Job ``payment.disburse_payments``: a batch of a payment run's payments."""

    payment_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=200))


class SealedEnrolmentError(ValueError):
    """A sealed enrolment that cannot be opened: wrong key, tampered with, or too old."""


def seal_enrolment(key: str, enrolment: dict[str, Any]) -> str:
    """Seal what ``payment.enroll_otp`` shows once (it holds the OTP secret).

    A command's reply is kept in the service's inbox, in the result backend and in the
    worker's log line; sealed, none of them holds the secret in the clear. Only a process
    configured with ``PETTYCASH_OTP_ENCRYPTION_KEY`` (the gateway) can open it.
    """
    return Fernet(key.encode()).encrypt(json.dumps(enrolment).encode()).decode()


def unseal_enrolment(key: str, token: str, ttl: int = ENROLMENT_SEAL_TTL_SECONDS) -> dict[str, Any]:
    """Open a sealed enrolment; :class:`SealedEnrolmentError` if it is not genuine or too old."""
    try:
        opened: dict[str, Any] = json.loads(Fernet(key.encode()).decrypt(token.encode(), ttl=ttl))
    except (InvalidToken, ValueError) as exc:
        raise SealedEnrolmentError("the sealed enrolment cannot be opened") from exc
    return opened
