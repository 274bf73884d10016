"""Payloads of the ledger service's commands, queries and events."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.money import MoneySchema


class FundsReservedPayload(Schema):
    """Event: a hold (pending transfer) on the branch float covers an approved requisition."""

    requisition_id = fields.UUID(required=True)
    branch_id = fields.String(required=True)
    transfer_id = fields.UUID(required=True)
    amount = fields.Nested(MoneySchema, required=True)


class FundsAwaitedPayload(Schema):
    """Event: the float cannot cover an approved requisition; it waits for replenishment."""

    requisition_id = fields.UUID(required=True)
    branch_id = fields.String(required=True)
    amount = fields.Nested(MoneySchema, required=True)
    available_minor = fields.Integer(required=True)


class OpenFloatPayload(Schema):
    """Command ``ledger.open_float``: fund a branch float from the HQ bank account."""

    branch_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    branch_code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    region_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    amount = fields.Nested(MoneySchema, required=True)


class RequestReplenishmentPayload(Schema):
    """Command ``ledger.request_replenishment`` (treasury)."""

    branch_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    amount = fields.Nested(MoneySchema, required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class RecordCashCountPayload(Schema):
    """Command ``ledger.record_cash_count`` (the branch's custodian, or treasury): the notes and
    coins counted in the float's till, as ``{"<denomination in major units>": <how many>}``."""

    branch_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    denominations = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[0-9]{1,9}(\.[0-9]{1,2})?$")),
        values=fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000)),
        required=True,
        validate=validate.Length(min=1, max=30),
    )
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class DecideVariancePayload(Schema):
    """Command ``ledger.decide_variance`` (finance; the CFO above the limit)."""

    id = fields.UUID(required=True)
    approve = fields.Boolean(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class DecideReplenishmentPayload(Schema):
    """Command ``ledger.decide_replenishment`` (finance or CFO)."""

    id = fields.UUID(required=True)
    approve = fields.Boolean(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))
