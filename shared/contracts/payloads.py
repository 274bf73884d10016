"""Payload schemas of every command, query and event, declared once.

Schemas reject unknown fields (marshmallow's default ``RAISE``): a producer that sends a
field no consumer understands is a bug to be found, not data to be dropped silently.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts.money import MoneySchema

CATEGORIES: tuple[str, ...] = (
    "office_supplies",
    "travel",
    "fuel",
    "meals",
    "repairs",
    "utilities",
    "postage",
    "cleaning",
    "other",
)
PAYEE_METHODS: tuple[str, ...] = ("cash", "mobile_money", "bank")
ORIGINS: tuple[str, ...] = ("branch", "head_office")


class PayeeSchema(Schema):
    """Who receives the money and how."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    method = fields.String(required=True, validate=validate.OneOf(PAYEE_METHODS))
    account_ref = fields.String(load_default="", validate=validate.Length(max=64))

    @validates_schema
    def _account_for_transfers(self, data: dict[str, object], **_: object) -> None:
        if data.get("method") != "cash" and not data.get("account_ref"):
            raise ValidationError("Required for mobile money and bank payees.", "account_ref")


class RequisitionFieldsSchema(Schema):
    """What a requester states; shared by the API body and the submit command."""

    amount = fields.Nested(MoneySchema, required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    purpose = fields.String(required=True, validate=validate.Length(min=3, max=500))
    payee = fields.Nested(PayeeSchema, required=True)
    urgent = fields.Boolean(load_default=False)
    urgency_reason = fields.String(load_default="", validate=validate.Length(max=500))

    @validates_schema
    def _reason_when_urgent(self, data: dict[str, object], **_: object) -> None:
        if data.get("urgent") and not str(data.get("urgency_reason", "")).strip():
            raise ValidationError("A reason is required for an urgent request.", "urgency_reason")


class SubmitRequisitionPayload(RequisitionFieldsSchema):
    """Command ``requisition.submit_requisition``: the gateway resolved the branch."""

    branch_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    branch_code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    region_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    origin = fields.String(required=True, validate=validate.OneOf(ORIGINS))


class ByIdPayload(Schema):
    """Queries that name one thing by id."""

    id = fields.UUID(required=True)


class RequisitionSubmittedPayload(Schema):
    """Event: a requisition entered the approval process."""

    requisition_id = fields.UUID(required=True)
    voucher_no = fields.String(required=True)
    branch_id = fields.String(required=True)
    region_id = fields.String(required=True)
    origin = fields.String(required=True, validate=validate.OneOf(ORIGINS))
    requester_id = fields.String(required=True)
    amount = fields.Nested(MoneySchema, required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    urgent = fields.Boolean(required=True)


class ApprovalCaseOpenedPayload(Schema):
    """Event: the approval service routed a requisition to a tier and a chain."""

    requisition_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    tier = fields.String(required=True)
    policy_version = fields.Integer(required=True)


class NoPayload(Schema):
    """Tasks that take nothing but the envelope."""
