"""Payloads of the read-model snapshots the services publish for the gateway's projections.

Each snapshot carries the aggregate's id, its version (one higher per committed change), the
time it was published, the columns the gateway filters, sorts and scopes by, and ``body``:
what the API shows of it. See ``shared.messaging.snapshots``.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.roles import ROLES

DOCUMENTS: tuple[str, ...] = ("policy", "caps", "ledger_check", "ledger_totals")
KINDS: tuple[str, ...] = (
    "requisition",
    "approval_case",
    "account",
    "payment",
    "alert",
    "authenticator",
    "replenishment",
    "float_day",
    "cash_count",
    "payment_run",
    *DOCUMENTS,
)
AUTHENTICATOR_STATUSES: tuple[str, ...] = ("pending", "active", "reset")


class ExportPayload(Schema):
    """Query ``<service>.export_read_models``: one page of one read model, in id order."""

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    after = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=2000))


class SnapshotPayload(Schema):
    """What every snapshot has."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    version = fields.Integer(required=True, validate=validate.Range(min=0))
    at = fields.AwareDateTime(required=True)
    body = fields.Dict(required=True)


class ScopedSnapshotPayload(SnapshotPayload):
    """A snapshot of something that belongs to a branch."""

    branch_id = fields.String(required=True, validate=validate.Length(max=64))
    region_id = fields.String(required=True, validate=validate.Length(max=64))


class RequisitionSnapshot(ScopedSnapshotPayload):
    requester_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    status = fields.String(required=True, validate=validate.Length(min=1, max=32))
    created_at = fields.AwareDateTime(required=True)


class InboxFacts(Schema):
    """Who may decide the active step, as columns the gateway's inbox query filters on."""

    step_role = fields.String(required=True, validate=validate.OneOf(ROLES))
    step_role_covers = fields.Boolean(required=True)
    admin_may_act = fields.Boolean(required=True)
    admin_covers = fields.Boolean(required=True)
    due_at = fields.AwareDateTime(required=True, allow_none=True)
    deciders = fields.List(fields.String(), required=True)
    item = fields.Dict(required=True)


class ApprovalCaseSnapshot(ScopedSnapshotPayload):
    """Keyed by the case's id; ``inbox`` is null unless a step waits for a decision."""

    requisition_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    requester_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    status = fields.String(required=True, validate=validate.Length(min=1, max=24))
    inbox = fields.Nested(InboxFacts, required=True, allow_none=True)


class AccountSnapshot(SnapshotPayload):
    code = fields.String(required=True, validate=validate.Length(min=1, max=96))
    kind = fields.String(required=True, validate=validate.OneOf(("bank", "float", "expense", "over_short")))
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    branch_id = fields.String(required=True, allow_none=True)
    region_id = fields.String(required=True, allow_none=True)
    float = fields.Dict(required=True, allow_none=True)


class PaymentSnapshot(ScopedSnapshotPayload):
    """Keyed by the payment's id; its state and when it completed, for the dashboard."""

    requisition_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    state = fields.String(load_default="processing", validate=validate.Length(min=1, max=16))
    completed_at = fields.AwareDateTime(load_default=None, allow_none=True)


class PaymentRunSnapshot(SnapshotPayload):
    """Keyed by the run's id (payment): many payments authorised with one code; it spans branches."""

    state = fields.String(required=True, validate=validate.OneOf(("awaiting_second", "started", "cancelled")))
    created_at = fields.AwareDateTime(required=True)


class ReplenishmentSnapshot(ScopedSnapshotPayload):
    """Keyed by the request's id (ledger): treasury asked for money for a float; finance or the
    CFO decides."""

    status = fields.String(required=True, validate=validate.OneOf(("requested", "approved", "rejected")))
    requested_at = fields.AwareDateTime(required=True)


class FloatDaySnapshot(ScopedSnapshotPayload):
    """Keyed by ``<float account id>:<day>`` (ledger): a float's day, for the dashboard."""

    currency = fields.String(required=True, validate=validate.Length(equal=3))
    day = fields.Date(required=True)
    funded_minor = fields.Integer(required=True, strict=True)
    spent_minor = fields.Integer(required=True, strict=True)
    closing_balance_minor = fields.Integer(required=True, strict=True)
    closing_available_minor = fields.Integer(required=True, strict=True)


class CashCountSnapshot(ScopedSnapshotPayload):
    """Keyed by the count's id (ledger): a till counted, and its variance's decision."""

    status = fields.String(required=True, validate=validate.OneOf(("balanced", "pending", "approved", "rejected")))
    counted_at = fields.AwareDateTime(required=True)


class AuthenticatorSnapshot(SnapshotPayload):
    """Keyed by the user's id: whether they have an authenticator (only ``active`` counts), so the
    gateway knows at sign-in whether to ask for a code or for an enrolment."""

    status = fields.String(required=True, validate=validate.OneOf(AUTHENTICATOR_STATUSES))


class AlertSnapshot(SnapshotPayload):
    """Keyed by the alert's id: versioned (it folds, is acknowledged, resolved)."""

    branch_id = fields.String(required=True, allow_none=True)
    raised_at = fields.AwareDateTime(required=True)
    last_seen_at = fields.AwareDateTime(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("open", "acknowledged", "resolved")))
    severity = fields.String(required=True, validate=validate.OneOf(("info", "warning", "critical")))
    kind = fields.String(required=True, validate=validate.Length(min=1, max=48))


class DocumentSnapshot(SnapshotPayload):
    """A document there is one of: the policy in force, the caps, the last ledger check."""

    id = fields.String(required=True, validate=validate.OneOf(DOCUMENTS))
