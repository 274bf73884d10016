"""The payment runs' API schemas: the ready payments a run may take, a run and its progress."""

from __future__ import annotations

from marshmallow import fields, validate

from services.gateway.dumping import ApiSchema
from services.gateway.schemas import (
    OTP_CODE,
    RequisitionSchema,
    _boolean,
    _integer,
    _money,
    _one_of,
    _text,
    _timestamp,
    _uuid,
)
from shared.contracts.money import MoneySchema
from shared.contracts.payloads import PAYEE_METHODS

RUN_STATES: tuple[str, ...] = ("awaiting_second", "started", "cancelled")
OUTCOMES: tuple[str, ...] = ("waiting", "processing", "paid", "failed", "left_out")


class CandidateQuerySchema(ApiSchema):
    """Which ready payments a run takes: one branch's, by payee method, within an amount range."""

    branch = fields.String(validate=validate.Length(min=1, max=32))
    method = fields.String(validate=validate.OneOf(PAYEE_METHODS))
    min_amount = fields.Integer(validate=validate.Range(min=0), metadata={"description": "Minor units, inclusive"})
    max_amount = fields.Integer(validate=validate.Range(min=0), metadata={"description": "Minor units, inclusive"})


class CandidateSchema(RequisitionSchema):
    """A requisition ready to pay, as lists show it."""

    class Meta:
        exclude = ("history", "receipts", "approval")

    executions_left = _integer(nullable=True, metadata={"description": "Null: never executed"})


class CandidateListSchema(ApiSchema):
    items = fields.List(fields.Nested(CandidateSchema), required=True)
    count = _integer()
    totals = fields.List(fields.Nested(MoneySchema), required=True, metadata={"description": "Per currency"})


class RunCreateSchema(ApiSchema):
    """Body of ``POST /api/v1/payment-runs``: the requisitions to pay and your code."""

    requisition_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=200))
    otp = fields.String(required=True, validate=OTP_CODE, metadata={"example": "492039"})


class RunAuthorisationSchema(ApiSchema):
    """Body of ``POST /api/v1/payment-runs/{id}/authorisation``: the second officer's code."""

    otp = fields.String(required=True, validate=OTP_CODE, metadata={"example": "492039"})


class RunCancellationSchema(ApiSchema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class LeftOutSchema(ApiSchema):
    rule = _text()
    detail = _text()


class RunPayeeSchema(ApiSchema):
    name = _text()
    method = _one_of(PAYEE_METHODS)


class RunItemSchema(ApiSchema):
    requisition_id = _uuid()
    payment_id = _uuid()
    voucher_no = _text(metadata={"description": "Empty when the requisition was unknown to payment"})
    branch_id = _text()
    amount = _money()
    payee = fields.Nested(RunPayeeSchema, required=True)
    included = _boolean()
    execution = _integer(nullable=True, metadata={"description": "The payment's execution this run started"})
    left_out = fields.Nested(LeftOutSchema, required=True, allow_none=True)
    outcome = _one_of(OUTCOMES)
    reason = _text()
    provider_reference = _text(nullable=True)


class RunProgressSchema(ApiSchema):
    waiting = _integer()
    processing = _integer()
    paid = _integer()
    failed = _integer()
    left_out = _integer()


class RunSchema(ApiSchema):
    id = _uuid()
    state = _one_of(RUN_STATES)
    total = _money()
    count = _integer(metadata={"description": "Items included"})
    dual_above = _money()
    needs_second_officer = _boolean()
    maker_id = _text()
    maker_name = _text()
    checker_id = _text(nullable=True)
    checker_name = _text(nullable=True)
    created_at = _timestamp()
    started_at = _timestamp(nullable=True)
    cancelled_at = _timestamp(nullable=True)
    cancel_reason = _text()
    items = fields.List(fields.Nested(RunItemSchema), required=True)
    progress = fields.Nested(RunProgressSchema, required=True)
    finished = _boolean(metadata={"description": "Started, and no item is waiting or processing any more"})


class RunListSchema(ApiSchema):
    items = fields.List(fields.Nested(RunSchema), required=True)
