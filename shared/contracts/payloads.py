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


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``, nothing else (marshmallow's own also takes 0, 1, "yes"...)."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


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
    urgent = StrictBoolean(load_default=False)
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
    draft = StrictBoolean(load_default=False)


class RequisitionSubmittedPayload(Schema):
    """Event: a requisition entered (or, after changes, re-entered) the approval process."""

    requisition_id = fields.UUID(required=True)
    voucher_no = fields.String(required=True)
    branch_id = fields.String(required=True)
    region_id = fields.String(required=True)
    origin = fields.String(required=True, validate=validate.OneOf(ORIGINS))
    requester_id = fields.String(required=True)
    requester_name = fields.String(load_default="")
    amount = fields.Nested(MoneySchema, required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    urgent = fields.Boolean(required=True)
    urgency_reason = fields.String(load_default="")
    payee = fields.Nested(PayeeSchema, load_default=None, allow_none=True)
    reused_receipts = fields.List(fields.String(), load_default=list)
    revision = fields.Integer(load_default=1)


class ApprovalCaseOpenedPayload(Schema):
    """Event: the approval service routed a requisition to a tier and a chain."""

    requisition_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    tier = fields.String(required=True)
    policy_version = fields.Integer(required=True)
    fast_track = StrictBoolean(load_default=False)
    chain = fields.List(fields.String(), load_default=list)
    escalations = fields.List(fields.String(), load_default=list)


class DeciderMixin(Schema):
    requisition_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    approver_id = fields.String(required=True)
    approver_name = fields.String(required=True)
    comment = fields.String(load_default="")


class ApprovalStepCompletedPayload(DeciderMixin):
    """Event: one approver in the chain approved (or confirmed an urgency)."""

    step = fields.Integer(required=True)
    role = fields.String(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(("approved", "urgency_confirmed")))


class RequisitionApprovedPayload(DeciderMixin):
    """Event: the last step approved; money may be reserved and paid."""

    voucher_no = fields.String(required=True)
    branch_id = fields.String(required=True)
    region_id = fields.String(required=True)
    requester_id = fields.String(required=True)
    approver_ids = fields.List(fields.String(), required=True)
    amount = fields.Nested(MoneySchema, required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    payee = fields.Nested(PayeeSchema, load_default=None, allow_none=True)
    approved_at = fields.AwareDateTime(required=True)


class RequisitionRejectedPayload(DeciderMixin):
    """Event: an approver rejected; the comment is the mandatory reason."""


class ChangesRequestedPayload(DeciderMixin):
    """Event: an approver sent the requisition back; it expires at the deadline."""

    deadline = fields.AwareDateTime(required=True)


class UrgencyRevertedPayload(DeciderMixin):
    """Event: the final approver declined the fast track; the normal chain applies."""

    chain = fields.List(fields.String(), load_default=list)


class ApprovalEscalatedPayload(Schema):
    """Event: a step went to someone else (no eligible holder, or its SLA ran out)."""

    requisition_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    step = fields.Integer(required=True)
    role = fields.String(required=True)
    escalated_to = fields.String(required=True)
    reason = fields.String(required=True)


class ReceiptAttachedPayload(Schema):
    """Event: a receipt was attached after submission; ``reused_in`` names other vouchers using it."""

    requisition_id = fields.UUID(required=True)
    sha256 = fields.String(required=True)
    reused_in = fields.List(fields.String(), required=True)


class RequisitionClosedPayload(Schema):
    """Events RequisitionCancelled and RequisitionExpired."""

    requisition_id = fields.UUID(required=True)
    branch_id = fields.String(required=True)
    actor_id = fields.String(required=True)
    reason = fields.String(load_default="")


class UserDirectoryUpdatedPayload(Schema):
    """Event: the gateway created or changed a user; other services keep a read model."""

    user_id = fields.String(required=True)
    username = fields.String(required=True)
    full_name = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    branch_ids = fields.List(fields.String(), required=True)
    region_ids = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)


class BranchDirectoryUpdatedPayload(Schema):
    """Event: an administrator created or changed a branch; the ledger keeps its float's levels.

    ``reorder_level``: below it the float's available balance is low (replenish); ``imprest``:
    the amount a replenishment tops the float up to. Null when not set.
    """

    branch_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    branch_code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    region_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True)
    head_office = fields.Boolean(required=True)
    reorder_level = fields.Nested(MoneySchema, required=True, allow_none=True)
    imprest = fields.Nested(MoneySchema, required=True, allow_none=True)


ALERT_KINDS: tuple[str, ...] = (
    "float_critical",  # a float's available balance below 80 % of its reorder level (ledger)
    "float_low",  # below its reorder level (ledger)
    "insufficient_funds",  # an approved requisition waits for funds (ledger)
    "replenishment_proposed",  # the ledger proposed a replenishment for a low float
    "payment_without_hold",  # a payment the ledger had no hold for (ledger)
    "payment_failed",  # a payment failed for good (payment)
    "payment_stuck",  # a payment executing for longer than it should (payment)
    "otp_failures",  # repeated wrong one-time codes for one user (payment)
    "approval_overdue",  # an approval step past its SLA (approval)
    "dead_letter",  # a message set aside for an operator (any service)
)
ALERT_SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


class AlertRaisedPayload(Schema):
    """Event: something needs a person's attention, raised by the service that owns the fact.

    A second alert of the same ``kind`` for the same ``subject`` (e.g. ``float:<branch>:KES``,
    ``requisition:<id>``) while one is unresolved folds into it: its count and last-seen time.
    """

    kind = fields.String(required=True, validate=validate.OneOf(ALERT_KINDS))
    severity = fields.String(required=True, validate=validate.OneOf(ALERT_SEVERITIES))
    message = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=128))
    requisition_id = fields.UUID(load_default=None, allow_none=True)
    branch_id = fields.String(load_default=None, allow_none=True)
    region_id = fields.String(load_default=None, allow_none=True)
    source = fields.String(required=True)


class AlertClearedPayload(Schema):
    """Event: the cause of an alert is gone (the float is above its level again, the payment
    went through): the unresolved alert of this kind and subject resolves itself."""

    kind = fields.String(required=True, validate=validate.OneOf(ALERT_KINDS))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=128))
    note = fields.String(required=True, validate=validate.Length(min=1, max=500))


class AlertActionPayload(Schema):
    """Command: acknowledge an alert, or resolve it with a note (treasury, finance, CFO, admin, in scope)."""

    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**63 - 1))
    note = fields.String(load_default="", validate=validate.Length(max=1000))


class MaintenancePayload(Schema):
    """Periodic tasks; ``as_of`` lets tests inject the clock (beat sends none: now)."""

    as_of = fields.AwareDateTime(load_default=None, allow_none=True)


class DraftEditPayload(RequisitionFieldsSchema):
    """Command ``requisition.update_requisition``: new values for an editable requisition."""

    id = fields.UUID(required=True)


class RequisitionActionPayload(Schema):
    """Commands that act on one requisition with an optional comment."""

    id = fields.UUID(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class AttachReceiptPayload(Schema):
    """Command ``requisition.attach_receipt``: the gateway stored the bytes by their SHA-256."""

    id = fields.UUID(required=True)
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    filename = fields.String(required=True, validate=validate.Length(min=1, max=200))
    content_type = fields.String(required=True, validate=validate.OneOf(("application/pdf", "image/png", "image/jpeg")))
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class CapSchema(Schema):
    """A cap on requisitions: per requisition of a category, or per branch per month."""

    kind = fields.String(required=True, validate=validate.OneOf(("category_per_requisition", "branch_monthly")))
    category = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CATEGORIES))
    branch_id = fields.String(load_default=None, allow_none=True)
    limit = fields.Nested(MoneySchema, required=True)


class SetCapsPayload(Schema):
    caps = fields.List(fields.Nested(CapSchema), required=True)


class DecisionPayload(Schema):
    """Command ``approval.record_decision``."""

    requisition_id = fields.UUID(required=True)
    decision = fields.String(
        required=True,
        validate=validate.OneOf(("approve", "reject", "request_changes", "confirm_urgency", "revert_urgency")),
    )
    comment = fields.String(load_default="", validate=validate.Length(max=1000))
    deadline_hours = fields.Integer(load_default=72, validate=validate.Range(min=1, max=24 * 30))


class TierPolicySchema(Schema):
    origin = fields.String(required=True, validate=validate.OneOf(ORIGINS))
    name = fields.String(required=True, validate=validate.Regexp(r"^T[1-9]$"))
    up_to_major = fields.Integer(required=True, allow_none=True, validate=validate.Range(min=1))
    chain = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=8))


class PolicySchema(Schema):
    """The approval policy: tiers by origin and amount, approver limits, SLAs."""

    tiers = fields.List(fields.Nested(TierPolicySchema), required=True, validate=validate.Length(min=2))
    limits = fields.Dict(
        keys=fields.String(), values=fields.Integer(allow_none=True, validate=validate.Range(min=1)), required=True
    )
    sla_hours = fields.Integer(load_default=24, validate=validate.Range(min=1, max=24 * 30))
    urgent_sla_hours = fields.Integer(load_default=2, validate=validate.Range(min=1, max=24 * 30))


class NoPayload(Schema):
    """Tasks that take nothing but the envelope."""


class AckSchema(Schema):
    """One consumer's acknowledgement of one outbox message."""

    message_id = fields.UUID(required=True)
    subscriber = fields.String(required=True, validate=validate.Length(min=1, max=32))


class AcksPayload(Schema):
    """Task ``<service>.ack_deliveries``: messages of this service's outbox that took effect."""

    acks = fields.List(fields.Nested(AckSchema), required=True, validate=validate.Length(min=1, max=10_000))
