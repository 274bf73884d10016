"""The API's marshmallow schemas: the single source of request validation and of OpenAPI."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.money import MoneySchema
from shared.contracts.payloads import CATEGORIES, CapSchema, PayeeSchema, PolicySchema, RequisitionFieldsSchema

__all__ = ["CapSchema", "PolicySchema"]


class RequisitionCreateSchema(RequisitionFieldsSchema):
    """Body of ``POST /api/v1/requisitions``."""

    branch = fields.String(
        required=True, validate=validate.Length(min=1, max=32), metadata={"description": "Branch code, e.g. NBO-CBD"}
    )
    draft = fields.Boolean(load_default=False, metadata={"description": "Save without submitting"})


class RequisitionEditSchema(RequisitionFieldsSchema):
    """Body of ``PATCH /api/v1/requisitions/{id}``: the full set of editable fields."""


class CommentSchema(Schema):
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class ReasonSchema(Schema):
    """A rejection: the reason is mandatory."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ChangesSchema(Schema):
    comment = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    deadline_hours = fields.Integer(load_default=72, strict=True, validate=validate.Range(min=1, max=24 * 30))


class ListQuerySchema(Schema):
    scope = fields.String(load_default="mine", validate=validate.OneOf(("mine", "branch", "all")))
    branch = fields.String(validate=validate.Length(min=1, max=32))
    status = fields.String(validate=validate.Length(min=1, max=32))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class ReceiptUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class ReceiptSchema(Schema):
    sha256 = fields.String()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    uploaded_at = fields.String()
    reused = fields.Boolean()
    reused_in = fields.List(fields.String())


class InboxItemSchema(Schema):
    requisition_id = fields.String()
    voucher_no = fields.String()
    branch_id = fields.String()
    requester_name = fields.String()
    amount = fields.Nested(MoneySchema)
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    urgent = fields.Boolean()
    urgency_reason = fields.String()
    tier = fields.String()
    step = fields.Integer()
    role = fields.String()
    kind = fields.String()
    due_at = fields.String(allow_none=True)
    overdue = fields.Boolean()
    reused_receipts = fields.List(fields.String())


class InboxSchema(Schema):
    items = fields.List(fields.Nested(InboxItemSchema))


class CapsSchema(Schema):
    caps = fields.List(fields.Nested(CapSchema), required=True)


class AlertSchema(Schema):
    kind = fields.String()
    severity = fields.String()
    message = fields.String()
    requisition_id = fields.String(allow_none=True)
    branch_id = fields.String(allow_none=True)
    source = fields.String()
    raised_at = fields.String()


class AlertListSchema(Schema):
    items = fields.List(fields.Nested(AlertSchema))


class HistoryEntrySchema(Schema):
    at = fields.String()
    actor_id = fields.String()
    actor_name = fields.String()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    comment = fields.String()


class ApprovalStepSchema(Schema):
    seq = fields.Integer()
    role = fields.String()
    kind = fields.String()
    status = fields.String()
    admin_may_act = fields.Boolean()
    escalation_reason = fields.String()
    due_at = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_by_name = fields.String(allow_none=True)
    acted_as = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)
    comment = fields.String()


class ApprovalCaseSchema(Schema):
    id = fields.String()
    requisition_id = fields.String()
    voucher_no = fields.String()
    tier = fields.String()
    policy_version = fields.Integer()
    revision = fields.Integer()
    fast_track = fields.Boolean()
    status = fields.String()
    reused_receipts = fields.List(fields.String())
    opened_at = fields.String()
    closed_at = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(ApprovalStepSchema))


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
    revision = fields.Integer()
    tier = fields.String(allow_none=True)
    approval_case_id = fields.String(allow_none=True)
    changes_deadline = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    history = fields.List(fields.Nested(HistoryEntrySchema))
    receipts = fields.List(fields.Nested(ReceiptSchema))
    approval = fields.Nested(ApprovalCaseSchema, allow_none=True)


class RequisitionListSchema(Schema):
    items = fields.List(fields.Nested(RequisitionSchema))
    limit = fields.Integer()
    offset = fields.Integer()


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
