"""The API's marshmallow schemas: the single source of request validation, of response
serialisation and of OpenAPI.

Request schemas validate what clients send (``@blp.arguments``). Response schemas are what
flask-smorest dumps every successful answer with (``@blp.response``), so the OpenAPI document
is what the API returns: one schema per resource, reused wherever that resource is answered.
A response schema declares every field the answer carries (dumping drops undeclared ones),
``required`` where the field is always present and ``allow_none`` where it may be null.
Problems (``application/problem+json``) are answered as they are built and documented here.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_dump, validate

from services.gateway.dumping import ApiSchema
from shared.contracts.money import CURRENCY_EXPONENTS, MoneySchema
from shared.contracts.payloads import (
    ALERT_KINDS,
    CATEGORIES,
    ORIGINS,
    CapSchema,
    PayeeSchema,
    PolicySchema,
    RequisitionFieldsSchema,
    StrictBoolean,
    TierPolicySchema,
)
from shared.contracts.roles import ROLES

__all__ = ["CapSchema", "PolicySchema"]

# What the services put in their bodies (they are the source; the contract tests compare).
REQUISITION_STATUSES: tuple[str, ...] = (
    "draft",
    "submitted",
    "pending_approval",
    "pending_urgency_confirmation",
    "changes_requested",
    "approved",
    "rejected",
    "cancelled",
    "expired",
    "awaiting_funds",
    "reserved",
    "payment_processing",
    "paid",
    "payment_failed",
)
CASE_STATUSES: tuple[str, ...] = ("open", "approved", "rejected", "changes_requested", "expired", "cancelled")
STEP_STATUSES: tuple[str, ...] = ("waiting", "active", "done", "skipped", "void")
STEP_KINDS: tuple[str, ...] = ("approve", "urgency_confirmation")
PAYMENT_STATES: tuple[str, ...] = ("processing", "completed", "failed")
REPLENISHMENT_STATUSES: tuple[str, ...] = ("requested", "approved", "rejected")
ENROLMENT_STATUSES: tuple[str, ...] = ("pending", "active", "reset")
ACCOUNT_KINDS: tuple[str, ...] = ("bank", "float", "expense", "over_short")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
RECEIPT_TYPES: tuple[str, ...] = ("application/pdf", "image/png", "image/jpeg")


def _timestamp(*, nullable: bool = False, **metadata: Any) -> fields.String:
    """An ISO 8601 timestamp with its offset, as the services write it (passed through as text)."""
    return fields.String(required=True, allow_none=nullable, metadata={"format": "date-time", **metadata})


def _uuid(*, nullable: bool = False, **metadata: Any) -> fields.String:
    """An id the services generate (a UUID, passed through as text)."""
    return fields.String(required=True, allow_none=nullable, metadata={"format": "uuid", **metadata})


def _text(*, nullable: bool = False, **kwargs: Any) -> fields.String:
    return fields.String(required=True, allow_none=nullable, **kwargs)


def _one_of(choices: tuple[str, ...], *, nullable: bool = False, **kwargs: Any) -> fields.String:
    return fields.String(required=True, allow_none=nullable, validate=validate.OneOf(choices), **kwargs)


def _integer(*, nullable: bool = False, **kwargs: Any) -> fields.Integer:
    return fields.Integer(required=True, allow_none=nullable, **kwargs)


def _boolean(**kwargs: Any) -> fields.Boolean:
    return StrictBoolean(required=True, **kwargs)


def _strings(**kwargs: Any) -> fields.List:
    return fields.List(fields.String(), required=True, **kwargs)


def _money() -> fields.Nested:
    return fields.Nested(MoneySchema, required=True)


# -- requests -------------------------------------------------------------------------


class RequisitionCreateSchema(RequisitionFieldsSchema):
    """Body of ``POST /api/v1/requisitions``."""

    branch = fields.String(
        required=True, validate=validate.Length(min=1, max=32), metadata={"description": "Branch code, e.g. NBO-CBD"}
    )
    draft = StrictBoolean(load_default=False, metadata={"description": "Save without submitting"})


class RequisitionEditSchema(RequisitionFieldsSchema):
    """Body of ``PATCH /api/v1/requisitions/{id}``: the full set of editable fields."""


class CommentSchema(ApiSchema):
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class ReasonSchema(ApiSchema):
    """A rejection: the reason is mandatory."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ChangesSchema(ApiSchema):
    comment = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    deadline_hours = fields.Integer(load_default=72, strict=True, validate=validate.Range(min=1, max=24 * 30))


class ListQuerySchema(ApiSchema):
    scope = fields.String(load_default="mine", validate=validate.OneOf(("mine", "branch", "all")))
    branch = fields.String(validate=validate.Length(min=1, max=32))
    status = fields.String(validate=validate.Length(min=1, max=32))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class ReceiptUploadSchema(ApiSchema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class OpenFloatSchema(ApiSchema):
    """Body of ``POST /api/v1/floats``."""

    branch = fields.String(required=True, validate=validate.Length(min=1, max=32))
    amount = fields.Nested(MoneySchema, required=True)


class ReplenishSchema(ApiSchema):
    """Body of ``POST /api/v1/floats/{branch_code}/replenishments``."""

    amount = fields.Nested(MoneySchema, required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class DecisionSchema(ApiSchema):
    """Body of ``POST /api/v1/replenishments/{id}/decision``."""

    approve = fields.Boolean(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


OTP_CODE = validate.Regexp(r"^[0-9]{6}$", error="A 6-digit code from your authenticator.")


class OtpActivationSchema(ApiSchema):
    """Body of ``POST /api/v1/otp/activation``."""

    code = fields.String(required=True, validate=OTP_CODE, metadata={"example": "492039"})


class PaymentExecuteSchema(ApiSchema):
    """Body of ``POST /api/v1/requisitions/{id}/payment``."""

    otp = fields.String(required=True, validate=OTP_CODE, metadata={"example": "492039"})


# -- rules across fields -----------------------------------------------------------------

# What the API enforces across fields (a field's validity depends on another's) has no field
# to carry it; these JSON Schema keywords are merged into the schemas' OpenAPI components, so
# the document says what a request needs (see ``services.gateway.api.Blueprint``).
PAYEE_ACCOUNT_RULE: dict[str, Any] = {
    "anyOf": [
        {"properties": {"method": {"enum": ["cash"]}}},
        {"required": ["account_ref"], "properties": {"account_ref": {"minLength": 1}}},
    ],
    "description": "A mobile money or bank payee needs an account_ref.",
}
URGENCY_RULE: dict[str, Any] = {
    "anyOf": [
        {"properties": {"urgent": {"enum": [False]}}},
        {"required": ["urgency_reason"], "properties": {"urgency_reason": {"pattern": "\\S"}}},
    ],
}
COMPONENT_RULES: dict[type[Schema], dict[str, Any]] = {
    PayeeSchema: PAYEE_ACCOUNT_RULE,
    RequisitionCreateSchema: URGENCY_RULE,
    RequisitionEditSchema: URGENCY_RULE,
}
# No text the API takes or gives may hold a NUL (no column can keep one): every string says so.
NUL_FREE = "^[^\\x00]*$"


# -- shared pieces of responses ---------------------------------------------------------


class BalanceSchema(MoneySchema):
    """Money that may be zero or negative (a float's balance, held and available amounts)."""

    minor_units = fields.Integer(required=True, strict=True, metadata={"description": "Integer minor units"})


class PayeeViewSchema(PayeeSchema):
    """Who receives the money and how, as answered (``account_ref`` is empty for cash)."""

    account_ref = fields.String(required=True)


# -- requisitions ------------------------------------------------------------------------


class ReceiptSchema(ApiSchema):
    """A receipt, flagged when the same file is attached to other requisitions."""

    sha256 = _text(validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    filename = _text()
    content_type = _one_of(RECEIPT_TYPES)
    size = _integer()
    uploaded_at = _timestamp()
    reused = _boolean()
    reused_in = _strings(metadata={"description": "Vouchers of other requisitions carrying the same file"})


class HistoryEntrySchema(ApiSchema):
    at = _timestamp()
    actor_id = _text(metadata={"description": "A user id, or system"})
    actor_name = _text()
    action = _text()
    from_status = _one_of(REQUISITION_STATUSES, nullable=True)
    to_status = _one_of(REQUISITION_STATUSES)
    comment = _text()


class ApprovalStepSchema(ApiSchema):
    seq = _integer()
    role = _one_of(ROLES)
    kind = _one_of(STEP_KINDS)
    status = _one_of(STEP_STATUSES)
    admin_may_act = _boolean()
    escalation_reason = _text()
    due_at = _timestamp(nullable=True)
    decided_by = _text(nullable=True)
    decided_by_name = _text(nullable=True)
    acted_as = _text(nullable=True, metadata={"description": "The role the decider acted in"})
    decision = _text(nullable=True)
    decided_at = _timestamp(nullable=True)
    comment = _text()


class ApprovalCaseSchema(ApiSchema):
    """A requisition's approval case: its tier, its policy version and the steps of its chain."""

    id = _uuid()
    requisition_id = _uuid()
    voucher_no = _text()
    tier = _text()
    policy_version = _integer()
    revision = _integer()
    fast_track = _boolean()
    status = _one_of(CASE_STATUSES)
    reused_receipts = _strings()
    opened_at = _timestamp()
    closed_at = _timestamp(nullable=True)
    steps = fields.List(fields.Nested(ApprovalStepSchema), required=True)


class RequisitionSchema(ApiSchema):
    """A requisition as the API shows it.

    ``history`` and ``receipts`` come with a single requisition (``GET`` of one), ``approval``
    too (null while no case is open, or when the case is outside the reader's scope); lists and
    commands answer without them.
    """

    id = _uuid()
    voucher_no = _text(nullable=True, metadata={"description": "Issued at submission; null for a draft"})
    branch_id = _text()
    branch_code = _text()
    region_id = _text()
    requester_id = _text()
    requester_name = _text()
    amount = _money()
    category = _one_of(CATEGORIES)
    purpose = _text()
    payee = fields.Nested(PayeeViewSchema, required=True)
    urgent = _boolean()
    urgency_reason = _text()
    status = _one_of(REQUISITION_STATUSES)
    revision = _integer()
    tier = _text(nullable=True)
    approval_case_id = _uuid(nullable=True)
    changes_deadline = _timestamp(nullable=True)
    created_at = _timestamp()
    updated_at = _timestamp()
    history = fields.List(fields.Nested(HistoryEntrySchema))
    receipts = fields.List(fields.Nested(ReceiptSchema))
    approval = fields.Nested(ApprovalCaseSchema, allow_none=True)


class RequisitionListSchema(ApiSchema):
    items = fields.List(fields.Nested(RequisitionSchema), required=True)
    limit = _integer()
    offset = _integer()


# -- approvals -------------------------------------------------------------------------


class InboxItemSchema(ApiSchema):
    requisition_id = _uuid()
    voucher_no = _text()
    branch_id = _text()
    requester_name = _text()
    amount = _money()
    category = _one_of(CATEGORIES)
    urgent = _boolean()
    urgency_reason = _text()
    tier = _text()
    step = _integer()
    role = _one_of(ROLES)
    kind = _one_of(STEP_KINDS)
    due_at = _timestamp(nullable=True)
    overdue = _boolean()
    reused_receipts = _strings()


class InboxSchema(ApiSchema):
    items = fields.List(fields.Nested(InboxItemSchema), required=True)


class TierViewSchema(TierPolicySchema):
    """A tier of the policy in force."""

    origin = _one_of(ORIGINS)
    up_to_major = _integer(nullable=True, metadata={"description": "Major units; null: no upper bound"})


class PolicyVersionSchema(ApiSchema):
    """The approval policy in force, and its version (open cases keep the version they were routed under)."""

    version = _integer()
    tiers = fields.List(fields.Nested(TierViewSchema), required=True)
    limits = fields.Dict(
        keys=fields.String(validate=validate.OneOf(ROLES)),
        values=fields.Integer(allow_none=True),
        required=True,
        metadata={"description": "Approval limit per role, in major units; null: unlimited"},
    )
    sla_hours = _integer()
    urgent_sla_hours = _integer()


# -- caps and alerts ---------------------------------------------------------------------


class CapsSchema(ApiSchema):
    """Body of ``PUT /api/v1/caps``."""

    caps = fields.List(fields.Nested(CapSchema), required=True)


class CapRuleSchema(ApiSchema):
    """A cap in force: per requisition of a category, or per branch per month."""

    kind = _one_of(("category_per_requisition", "branch_monthly"))
    category = _one_of(CATEGORIES, nullable=True)
    branch_id = _text(nullable=True)
    limit = _money()


class CapListSchema(ApiSchema):
    caps = fields.List(fields.Nested(CapRuleSchema), required=True)


ALERT_STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved")


class AlertSchema(ApiSchema):
    """An alert: one per kind and subject while unresolved (a repeat folds into it: ``count``,
    ``last_seen_at``); acknowledged by a person, resolved by one with a note or by itself
    (``resolved_by`` "system") when its cause is gone."""

    id = _integer()
    kind = _one_of(ALERT_KINDS)
    subject = _text()
    severity = _one_of(SEVERITIES)
    message = _text()
    requisition_id = _uuid(nullable=True)
    branch_id = _text(nullable=True)
    source = _text()
    raised_at = _timestamp(description="first seen")
    last_seen_at = _timestamp()
    count = _integer()
    status = _one_of(ALERT_STATUSES)
    acknowledged_by = _text(nullable=True)
    acknowledged_at = _timestamp(nullable=True)
    resolved_by = _text(nullable=True)
    resolved_at = _timestamp(nullable=True)
    resolution_note = _text()


class AlertListSchema(ApiSchema):
    items = fields.List(fields.Nested(AlertSchema), required=True)
    counts = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "unresolved, by severity"},
    )


class AlertQuerySchema(ApiSchema):
    status = fields.String(load_default="unresolved", validate=validate.OneOf(("unresolved", *ALERT_STATUSES, "all")))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=200))


class AlertResolutionSchema(ApiSchema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=1000))


# -- floats and the ledger -----------------------------------------------------------------


class FloatSchema(ApiSchema):
    """A branch's float: balance, held (reserved for approved requisitions) and available, and
    its branch's levels in the float's currency."""

    account = _text()
    branch_id = _text()
    branch_code = _text()
    balance = fields.Nested(BalanceSchema, required=True)
    held = fields.Nested(BalanceSchema, required=True)
    available = fields.Nested(BalanceSchema, required=True)
    reorder_level = fields.Nested(
        MoneySchema,
        required=True,
        allow_none=True,
        metadata={"description": "Below it the available balance is low; null when not set in this currency"},
    )
    imprest = fields.Nested(
        MoneySchema,
        required=True,
        allow_none=True,
        metadata={"description": "What a replenishment tops the float up to; null when not set in this currency"},
    )
    below_reorder_level = _boolean(
        metadata={"description": "Available is below the reorder level (false when none is set)"}
    )


class FloatListSchema(ApiSchema):
    items = fields.List(fields.Nested(FloatSchema), required=True)


class BranchFloatsSchema(ApiSchema):
    branch_id = _text()
    floats = fields.List(fields.Nested(FloatSchema), required=True)


class ReplenishmentSchema(ApiSchema):
    id = _uuid()
    branch_id = _text()
    amount = _money()
    status = _one_of(REPLENISHMENT_STATUSES)
    requested_by = _text()
    requested_at = _timestamp()
    comment = _text()
    decided_by = _text(nullable=True)
    decided_at = _timestamp(nullable=True)
    decision_comment = _text()


class ReplenishmentListSchema(ApiSchema):
    items = fields.List(fields.Nested(ReplenishmentSchema), required=True)


class ReplenishmentQuerySchema(ApiSchema):
    status = fields.String(validate=validate.OneOf(REPLENISHMENT_STATUSES))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=200))


class LedgerTotalsSchema(ApiSchema):
    """Debits and credits in minor units, posted and pending."""

    debits_posted = _integer()
    credits_posted = _integer()
    debits_pending = _integer()
    credits_pending = _integer()


class AccountSchema(LedgerTotalsSchema):
    """A ledger account and its cached totals."""

    code = _text()
    kind = _one_of(ACCOUNT_KINDS)
    currency = _text(validate=validate.Length(equal=3))
    branch_id = _text(nullable=True)


class TrialBalanceSchema(ApiSchema):
    balanced = _boolean(metadata={"description": "Debits equal credits and no cached balance disagrees"})
    totals = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(LedgerTotalsSchema),
        required=True,
        metadata={"description": "Per currency"},
    )
    cache_mismatches = _strings(metadata={"description": "Accounts whose cached totals differ from their transfers"})
    cache_checked_at = _timestamp(nullable=True, description="When the cached totals were last checked; null: never")
    negative_floats = _strings()
    accounts = fields.List(fields.Nested(AccountSchema), required=True)


# -- treasury: authenticators and payments -----------------------------------------------


class EnrolmentSchema(ApiSchema):
    """A treasury user's authenticator; the URI and QR code are shown once, at enrolment."""

    user_id = _text()
    status = _one_of(
        ENROLMENT_STATUSES, metadata={"description": "pending until activated with a first code, then active"}
    )
    issuer = _text()
    digits = _integer()
    period = _integer()
    created_at = _timestamp()
    activated_at = _timestamp(nullable=True)
    provisioning_uri = fields.String(metadata={"description": "otpauth:// URI (enrolment only; holds the secret)"})
    qr_svg = fields.String(metadata={"description": "The URI as an SVG QR code (enrolment only)"})
    recovery_codes = fields.List(
        fields.String(), metadata={"description": "Activation only: shown this once; each works for one sign-in"}
    )


class ProviderAttemptSchema(ApiSchema):
    number = _integer()
    provider = _text()
    outcome = _text(metadata={"description": "paid, transient or permanent"})
    detail = _text()
    at = _timestamp()


class PaymentExecutionSchema(ApiSchema):
    number = _integer()
    executor_id = _text()
    executor_name = _text()
    started_at = _timestamp()
    finished_at = _timestamp(nullable=True)
    outcome = _text()
    reason = _text()
    attempts = fields.List(fields.Nested(ProviderAttemptSchema), required=True)


class PaymentSchema(ApiSchema):
    """A requisition's payment as the API shows it (``history``: with a ``GET`` of it)."""

    id = _uuid()
    requisition_id = _uuid()
    branch_id = _text()
    state = _one_of(PAYMENT_STATES)
    amount = _money()
    payee = fields.Nested(PayeeViewSchema, required=True)
    executions = _integer()
    executions_left = _integer()
    executor_id = _text()
    executor_name = _text()
    provider = _text(nullable=True)
    provider_reference = _text(nullable=True)
    last_error = _text(nullable=True)
    created_at = _timestamp()
    updated_at = _timestamp()
    completed_at = _timestamp(nullable=True)
    history = fields.List(fields.Nested(PaymentExecutionSchema))


# -- commands, operations, problems -------------------------------------------------------


class AcceptedSchema(ApiSchema):
    """The command was accepted but its outcome is not known yet; poll ``status_url``."""

    state = _one_of(("pending",), metadata={"example": "pending"})
    message_id = _uuid()
    status_url = _text()


class _Extensible(ApiSchema):
    """A problem may carry extension members (RFC 9457 section 3.2): keep them when dumped."""

    class Meta:
        unknown = INCLUDE

    @post_dump(pass_original=True)
    def _keep_extensions(self, data: dict[str, Any], original: Any, **_: Any) -> dict[str, Any]:
        if isinstance(original, dict):
            return {**original, **data}
        return data


class ReplyProblemSchema(_Extensible):
    """How a service refused a command (its status is the command's)."""

    type = _text(metadata={"description": "A stable machine-readable slug"})
    title = _text()
    detail = _text()


class ProblemSchema(ReplyProblemSchema):
    """application/problem+json (RFC 9457), with extension members where they apply."""

    status = _integer()
    errors = fields.Dict(metadata={"description": "Field messages of a malformed request, by field"})
    rule = fields.String(metadata={"description": "The business rule that refused the request"})
    retry_after = fields.Integer(metadata={"description": "Seconds until a locked-out user may try again"})
    attempts_left = fields.Integer(metadata={"description": "Wrong codes left before payments lock"})
    locked_until = fields.String(metadata={"format": "date-time"})


class CommandStatusSchema(ApiSchema):
    """A command's outcome: ``pending`` (202), or ``done`` with the status and the body (or the
    problem) its endpoint answered."""

    state = _one_of(("pending", "done"))
    status = _integer(nullable=True)
    body = fields.Dict(
        allow_none=True, metadata={"description": "The resource the command's endpoint answers with (when done)"}
    )
    problem = fields.Nested(ReplyProblemSchema, allow_none=True)


class LagSchema(ApiSchema):
    samples = _integer()
    p50_ms = fields.Float(required=True, allow_none=True)
    p95_ms = fields.Float(required=True, allow_none=True)
    max_ms = fields.Float(required=True, allow_none=True)


class SystemStatusSchema(ApiSchema):
    queues = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Messages waiting per queue (empty with the embedded broker)"},
    )
    queue_limit = _integer()
    projection_lag = fields.Nested(LagSchema, required=True)


# -- the dashboard ---------------------------------------------------------------------------


class DashboardBranchSchema(FloatSchema):
    """A branch's float with its trailing spend, its days left and what waits there."""

    currency = _text()
    spent_in_window = fields.Nested(BalanceSchema, required=True, metadata={"description": "Spend over the window"})
    days_left = _integer(
        nullable=True,
        metadata={"description": "Days until the reorder level at the window's daily spend; null: no level or spend"},
    )
    waiting_approval = _integer()
    waiting_funds = _integer()
    ready = _integer(metadata={"description": "Approved, funds held, ready to pay"})
    executing = _integer()
    failed = _integer()
    paid_today = _integer()


class DashboardMoneySchema(ApiSchema):
    currency = _text()
    balance = fields.Nested(BalanceSchema, required=True)
    held = fields.Nested(BalanceSchema, required=True)
    available = fields.Nested(BalanceSchema, required=True)
    spent = fields.Nested(BalanceSchema, required=True)


class DashboardTotalsSchema(ApiSchema):
    money = fields.List(fields.Nested(DashboardMoneySchema), required=True)
    waiting_approval = _integer()
    waiting_funds = _integer()
    ready = _integer()
    executing = _integer()
    failed = _integer()
    paid_today = _integer()


class BalancePointSchema(ApiSchema):
    day = fields.String(required=True, metadata={"format": "date"})
    balance = fields.Nested(BalanceSchema, required=True)


class BalanceHistorySchema(ApiSchema):
    currency = _text()
    points = fields.List(fields.Nested(BalancePointSchema), required=True)


class CategorySpendSchema(ApiSchema):
    category = _text()
    spent = fields.Nested(BalanceSchema, required=True)


class LatestPaymentSchema(PaymentSchema):
    """A payment as the dashboard lists it (without its executions)."""

    class Meta:
        exclude = ("history",)


class DashboardSchema(ApiSchema):
    """Floats against their levels, what waits, alerts, the latest payments, 30 days' history."""

    as_of = _timestamp()
    window_days = _integer()
    branches = fields.List(fields.Nested(DashboardBranchSchema), required=True)
    totals = fields.Nested(DashboardTotalsSchema, required=True)
    alerts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    balance_history = fields.List(fields.Nested(BalanceHistorySchema), required=True)
    spend_by_category = fields.List(fields.Nested(CategorySpendSchema), required=True)
    latest_payments = fields.List(fields.Nested(LatestPaymentSchema), required=True)


class DashboardQuerySchema(ApiSchema):
    branch = fields.String(validate=validate.Length(min=1, max=32))


# -- cash counts ---------------------------------------------------------------------------

CASH_COUNT_STATUSES: tuple[str, ...] = ("balanced", "pending", "approved", "rejected")


DENOMINATION = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"


def _between_properties(low: int, high: int) -> Any:
    """A dict of ``low`` to ``high`` entries (documented as minProperties/maxProperties, which a
    ``validate.Length`` would document as a string's length)."""

    def check(value: dict[str, Any]) -> None:
        if not low <= len(value) <= high:
            raise ValidationError(f"Between {low} and {high} entries.")

    return check


class CashCountCreateSchema(ApiSchema):
    """Body of ``POST /api/v1/floats/{branch_code}/cash-counts``."""

    currency = fields.String(load_default="KES", validate=validate.OneOf(tuple(CURRENCY_EXPONENTS)))
    denominations = fields.Dict(
        keys=fields.String(),  # each checked against DENOMINATION by the view: 422, a rule, not a shape
        values=fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000)),
        required=True,
        validate=_between_properties(1, 30),
        metadata={
            "description": 'How many of each note and coin, by its value in major units: {"1000": 5, "0.50": 4}',
            "minProperties": 1,
            "maxProperties": 30,
        },
    )
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class CashCountSchema(ApiSchema):
    """A till counted against the book balance; a variance waits for finance (the CFO above the limit)."""

    id = _uuid()
    branch_id = _text()
    denominations = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    counted = fields.Nested(BalanceSchema, required=True)
    book = fields.Nested(BalanceSchema, required=True)
    variance = fields.Nested(
        BalanceSchema, required=True, metadata={"description": "counted less book: over (+) or short (-)"}
    )
    counted_by = _text()
    counted_by_name = _text()
    counted_at = _timestamp()
    comment = _text()
    status = _one_of(CASH_COUNT_STATUSES)
    decided_by = _text(nullable=True)
    decided_at = _timestamp(nullable=True)
    decision_comment = _text()
    needs_cfo = _boolean()


class CashCountListSchema(ApiSchema):
    items = fields.List(fields.Nested(CashCountSchema), required=True)


class CashCountQuerySchema(ApiSchema):
    branch = fields.String(validate=validate.Length(min=1, max=32))
    status = fields.String(validate=validate.OneOf(CASH_COUNT_STATUSES))
