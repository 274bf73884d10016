"""Payloads of the payment service's commands, queries and events."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.money import MoneySchema


class PaymentStartedPayload(Schema):
    """Event: a treasury user's OTP was accepted; disbursement is under way."""

    requisition_id = fields.UUID(required=True)
    payment_id = fields.UUID(required=True)
    executor_id = fields.String(required=True)
    executor_name = fields.String(required=True)


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


class ExecutePaymentPayload(Schema):
    """Command ``payment.execute_payment`` (treasury): pay a reserved requisition."""

    requisition_id = fields.UUID(required=True)
    otp = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))


class PaymentIdPayload(Schema):
    """Job ``payment.disburse_payment``."""

    payment_id = fields.UUID(required=True)


class RequisitionRefPayload(Schema):
    """Queries about the payment of one requisition."""

    requisition_id = fields.UUID(required=True)
