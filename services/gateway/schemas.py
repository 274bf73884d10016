"""The API's marshmallow schemas: the single source of request validation and of OpenAPI."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.money import MoneySchema
from shared.contracts.payloads import PayeeSchema, RequisitionFieldsSchema


class RequisitionCreateSchema(RequisitionFieldsSchema):
    """Body of ``POST /api/v1/requisitions``."""

    branch = fields.String(
        required=True, validate=validate.Length(min=1, max=32), metadata={"description": "Branch code, e.g. NBO-CBD"}
    )


class HistoryEntrySchema(Schema):
    at = fields.String()
    actor_id = fields.String()
    actor_name = fields.String()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    comment = fields.String()


class ApprovalCaseSchema(Schema):
    id = fields.String()
    requisition_id = fields.String()
    tier = fields.String()
    policy_version = fields.Integer()
    status = fields.String()
    opened_at = fields.String()


class RequisitionSchema(Schema):
    """A requisition as the API shows it."""

    id = fields.String()
    voucher_no = fields.String()
    branch_id = fields.String()
    branch_code = fields.String()
    region_id = fields.String()
    requester_id = fields.String()
    requester_name = fields.String()
    amount = fields.Nested(MoneySchema)
    category = fields.String()
    purpose = fields.String()
    payee = fields.Nested(PayeeSchema)
    urgent = fields.Boolean()
    urgency_reason = fields.String()
    status = fields.String()
    tier = fields.String(allow_none=True)
    approval_case_id = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    history = fields.List(fields.Nested(HistoryEntrySchema))
    approval = fields.Nested(ApprovalCaseSchema, allow_none=True)


class AcceptedSchema(Schema):
    """The command was accepted but its outcome is not known yet; poll ``status_url``."""

    state = fields.String(metadata={"example": "pending"})
    message_id = fields.String()
    status_url = fields.String()


class CommandStatusSchema(Schema):
    state = fields.String(metadata={"description": "pending or done"})
    status = fields.Integer(allow_none=True)
    body = fields.Dict(allow_none=True)
    problem = fields.Dict(allow_none=True)


class ProblemSchema(Schema):
    """application/problem+json (RFC 9457)."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict()


class HealthSchema(Schema):
    status = fields.String()
    checks = fields.Dict()
