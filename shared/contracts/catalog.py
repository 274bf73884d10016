"""Every task name, queue, route and event subscription, declared once.

Commands and queries are tasks named ``<service>.<verb>_<noun>`` on the owning service's
queue. Events are past-tense names; the relay fans each one out to the ``handle_event``
task of every subscriber listed here. Nothing else in the code base spells a task name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from marshmallow import Schema

from shared.contracts import ledger as lg
from shared.contracts import payloads as p
from shared.contracts import payment as pm
from shared.contracts import readmodels as rm
from shared.contracts import reports as rp

Kind = Literal["command", "query", "maintenance", "job"]


@dataclass(frozen=True)
class TaskSpec:
    """A task one service serves: its name, queue and payload schema; ``hold_seconds``: how long
    after it is sent a worker starts it (a job that need not start at once)."""

    name: str
    kind: Kind
    payload: type[Schema]
    hold_seconds: float = 0.0

    @property
    def service(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def queue(self) -> str:
        return QUEUE_OF_KIND.get(self.kind, queue_of)(self.service)


@dataclass(frozen=True)
class EventSpec:
    """An event, its payload schema and the services that subscribe to it."""

    name: str
    payload: type[Schema]
    subscribers: tuple[str, ...]


def queue_of(service: str) -> str:
    """The queue a service consumes (one per service; scale by adding workers)."""
    return service


def query_queue_of(service: str) -> str:
    """The queue of a service's queries (reports, exports for rebuilds): never behind its saga events."""
    return f"{service}-queries"


def jobs_queue_of(service: str) -> str:
    """The queue of a service's jobs: work a command set going, which nobody waits for (a payment
    run's launch, its disbursements). A worker of its own keeps them off the commands' interpreter."""
    return f"{service}-jobs"


# A service's queues, by what a worker may be told to take (``pettycash worker --only``): its
# commands and saga events, its queries, its jobs.
QUEUES: dict[str, Callable[[str], str]] = {"events": queue_of, "queries": query_queue_of, "jobs": jobs_queue_of}
# The queue of each kind of task other than commands (which travel with the saga events).
QUEUE_OF_KIND: dict[str, Callable[[str], str]] = {"query": query_queue_of, "job": jobs_queue_of}


def queues_of(service: str) -> list[str]:
    """Every queue a service's worker consumes unless told which."""
    return [queue(service) for queue in QUEUES.values()]


def ack_task(service: str) -> str:
    """The task through which a service hears that its outbox messages took effect."""
    return f"{service}.ack_deliveries"


def export_task(service: str) -> str:
    """The query that pages through a service's read-model snapshots (``projections rebuild``)."""
    return f"{service}.export_read_models"


def report_task(service: str) -> str:
    """The query through which a service computes the reports it owns (``shared.contracts.reports``)."""
    return f"{service}.run_report"


def handle_event_task(service: str) -> str:
    """The task through which a service receives the events it subscribes to."""
    return f"{service}.handle_event"


def handle_events_task(service: str) -> str:
    """The task through which a service receives a bundle of events one commit sent it."""
    return f"{service}.handle_events"


def prune_messages_task(service: str) -> str:
    """The periodic task that trims a service's old inbox and published outbox rows."""
    return f"{service}.prune_messages"


# -- requisition ---------------------------------------------------------------------
SUBMIT_REQUISITION = TaskSpec("requisition.submit_requisition", "command", p.SubmitRequisitionPayload)
UPDATE_REQUISITION = TaskSpec("requisition.update_requisition", "command", p.DraftEditPayload)
SUBMIT_DRAFT = TaskSpec("requisition.submit_draft", "command", p.RequisitionActionPayload)
CANCEL_REQUISITION = TaskSpec("requisition.cancel_requisition", "command", p.RequisitionActionPayload)
ATTACH_RECEIPT = TaskSpec("requisition.attach_receipt", "command", p.AttachReceiptPayload)
SET_CAPS = TaskSpec("requisition.set_caps", "command", p.SetCapsPayload)
ACKNOWLEDGE_ALERT = TaskSpec("requisition.acknowledge_alert", "command", p.AlertActionPayload)
RESOLVE_ALERT = TaskSpec("requisition.resolve_alert", "command", p.AlertActionPayload)
EXPIRE_REQUISITIONS = TaskSpec("requisition.expire_requisitions", "maintenance", p.MaintenancePayload)

# -- approval ------------------------------------------------------------------------
RECORD_DECISION = TaskSpec("approval.record_decision", "command", p.DecisionPayload)
SET_POLICY = TaskSpec("approval.set_policy", "command", p.PolicySchema)
ESCALATE_OVERDUE = TaskSpec("approval.escalate_overdue", "maintenance", p.MaintenancePayload)

# -- ledger --------------------------------------------------------------------------
OPEN_FLOAT = TaskSpec("ledger.open_float", "command", lg.OpenFloatPayload)
REQUEST_REPLENISHMENT = TaskSpec("ledger.request_replenishment", "command", lg.RequestReplenishmentPayload)
RECORD_CASH_COUNT = TaskSpec("ledger.record_cash_count", "command", lg.RecordCashCountPayload)
DECIDE_VARIANCE = TaskSpec("ledger.decide_variance", "command", lg.DecideVariancePayload)
DECIDE_REPLENISHMENT = TaskSpec("ledger.decide_replenishment", "command", lg.DecideReplenishmentPayload)
VERIFY_LEDGER = TaskSpec("ledger.verify_ledger", "maintenance", p.MaintenancePayload)

# -- payment -------------------------------------------------------------------------
ENROLL_OTP = TaskSpec("payment.enroll_otp", "command", p.NoPayload)
ACTIVATE_OTP = TaskSpec("payment.activate_otp", "command", pm.OtpCodePayload)
EXECUTE_PAYMENT = TaskSpec("payment.execute_payment", "command", pm.ExecutePaymentPayload)
VERIFY_SECOND_FACTOR = TaskSpec("payment.verify_second_factor", "command", pm.SecondFactorPayload)
RESET_AUTHENTICATOR = TaskSpec("payment.reset_authenticator", "command", pm.ResetAuthenticatorPayload)
START_PAYMENT_RUN = TaskSpec("payment.start_payment_run", "command", pm.StartPaymentRunPayload)
AUTHORISE_PAYMENT_RUN = TaskSpec("payment.authorise_payment_run", "command", pm.AuthorisePaymentRunPayload)
CANCEL_PAYMENT_RUN = TaskSpec("payment.cancel_payment_run", "command", pm.CancelPaymentRunPayload)
# A run's hundred payments start once its officer has the answer: sent with the command's
# commit, the launch would take the two cores the answer is being written on (the benchmark's
# authorisation of a run of 100: p50 100 ms started at once, 76 ms held; paid within ~2 s either way).
LAUNCH_PAYMENT_RUN = TaskSpec("payment.launch_payment_run", "job", pm.PaymentRunIdPayload, hold_seconds=0.15)
DISBURSE_PAYMENT = TaskSpec("payment.disburse_payment", "job", pm.PaymentIdPayload)
DISBURSE_PAYMENTS = TaskSpec("payment.disburse_payments", "job", pm.PaymentIdsPayload)
RECONCILE_PAYMENTS = TaskSpec("payment.reconcile_payments", "maintenance", p.MaintenancePayload)

# -- read-model exports (``pettycash projections rebuild``) ----------------------------
# The read models each service publishes, by the kind their versions are kept under.
READ_MODELS: dict[str, tuple[str, ...]] = {
    "requisition": ("requisition", "alert", "caps"),
    "approval": ("approval_case", "policy"),
    "payment": ("payment", "authenticator", "payment_run"),
    "ledger": ("account", "replenishment", "float_day", "cash_count", "ledger_check", "ledger_totals"),
}
EXPORTS: dict[str, TaskSpec] = {s: TaskSpec(export_task(s), "query", rm.ExportPayload) for s in READ_MODELS}

# -- reports (``GET /api/v1/reports/<name>``): each from its owner's own tables ----------------
REPORT_QUERIES: dict[str, TaskSpec] = {
    s: TaskSpec(report_task(s), "query", rp.ReportPayload) for s in rp.REPORT_SERVICES
}

# Every database's owner has an outbox, so every one hears acknowledgements.
ACKS: dict[str, TaskSpec] = {
    s: TaskSpec(ack_task(s), "maintenance", p.AcksPayload)
    for s in ("requisition", "approval", "payment", "ledger", "gateway")
}

TASKS: tuple[TaskSpec, ...] = (
    *(v for v in list(globals().values()) if isinstance(v, TaskSpec)),
    *EXPORTS.values(),
    *REPORT_QUERIES.values(),
    *ACKS.values(),
)

# -- events --------------------------------------------------------------------------
REQUISITION_SUBMITTED = EventSpec("RequisitionSubmitted", p.RequisitionSubmittedPayload, ("approval",))
APPROVAL_CASE_OPENED = EventSpec("ApprovalCaseOpened", p.ApprovalCaseOpenedPayload, ("requisition",))
APPROVAL_STEP_COMPLETED = EventSpec("ApprovalStepCompleted", p.ApprovalStepCompletedPayload, ("requisition",))
REQUISITION_APPROVED = EventSpec(
    "RequisitionApproved", p.RequisitionApprovedPayload, ("requisition", "ledger", "payment")
)
REQUISITION_REJECTED = EventSpec("RequisitionRejected", p.RequisitionRejectedPayload, ("requisition",))
CHANGES_REQUESTED = EventSpec("ChangesRequested", p.ChangesRequestedPayload, ("requisition",))
URGENCY_REVERTED = EventSpec("UrgencyReverted", p.UrgencyRevertedPayload, ("requisition",))
APPROVAL_ESCALATED = EventSpec("ApprovalEscalated", p.ApprovalEscalatedPayload, ("requisition",))
REQUISITION_CANCELLED = EventSpec("RequisitionCancelled", p.RequisitionClosedPayload, ("approval", "ledger", "payment"))
REQUISITION_EXPIRED = EventSpec("RequisitionExpired", p.RequisitionClosedPayload, ("approval",))
RECEIPT_ATTACHED = EventSpec("ReceiptAttached", p.ReceiptAttachedPayload, ("approval",))
USER_DIRECTORY_UPDATED = EventSpec("UserDirectoryUpdated", p.UserDirectoryUpdatedPayload, ("approval",))
BRANCH_DIRECTORY_UPDATED = EventSpec("BranchDirectoryUpdated", p.BranchDirectoryUpdatedPayload, ("ledger",))
ALERT_RAISED = EventSpec("AlertRaised", p.AlertRaisedPayload, ("requisition",))
ALERT_CLEARED = EventSpec("AlertCleared", p.AlertClearedPayload, ("requisition",))
FUNDS_RESERVED = EventSpec("FundsReserved", lg.FundsReservedPayload, ("requisition", "payment"))
FUNDS_AWAITED = EventSpec("FundsAwaited", lg.FundsAwaitedPayload, ("requisition",))
PAYMENT_STARTED = EventSpec("PaymentStarted", pm.PaymentStartedPayload, ("requisition",))
PAYMENT_COMPLETED = EventSpec("PaymentCompleted", pm.PaymentCompletedPayload, ("requisition", "ledger"))
PAYMENT_FAILED = EventSpec("PaymentFailed", pm.PaymentFailedPayload, ("requisition", "ledger"))

# Read-model snapshots (shared.messaging.snapshots): the gateway projects them.
REQUISITION_CHANGED = EventSpec("RequisitionChanged", rm.RequisitionSnapshot, ("gateway",))
APPROVAL_CASE_CHANGED = EventSpec("ApprovalCaseChanged", rm.ApprovalCaseSnapshot, ("gateway",))
ACCOUNT_CHANGED = EventSpec("AccountChanged", rm.AccountSnapshot, ("gateway",))
PAYMENT_CHANGED = EventSpec("PaymentChanged", rm.PaymentSnapshot, ("gateway",))
PAYMENT_RUN_CHANGED = EventSpec("PaymentRunChanged", rm.PaymentRunSnapshot, ("gateway",))
AUTHENTICATOR_CHANGED = EventSpec("AuthenticatorChanged", rm.AuthenticatorSnapshot, ("gateway",))
ALERT_RECORDED = EventSpec("AlertRecorded", rm.AlertSnapshot, ("gateway",))
CASH_COUNT_CHANGED = EventSpec("CashCountChanged", rm.CashCountSnapshot, ("gateway",))
FLOAT_DAY_CHANGED = EventSpec("FloatDayChanged", rm.FloatDaySnapshot, ("gateway",))
REPLENISHMENT_CHANGED = EventSpec("ReplenishmentChanged", rm.ReplenishmentSnapshot, ("gateway",))
DOCUMENT_CHANGED = EventSpec("DocumentChanged", rm.DocumentSnapshot, ("gateway",))

EVENTS: dict[str, EventSpec] = {e.name: e for e in list(globals().values()) if isinstance(e, EventSpec)}

TASKS_BY_NAME: dict[str, TaskSpec] = {t.name: t for t in TASKS}

# Periodic tasks and their period in seconds (Celery beat sends them with a system envelope).
SCHEDULE: tuple[tuple[TaskSpec, float], ...] = (
    (ESCALATE_OVERDUE, 60.0),
    (EXPIRE_REQUISITIONS, 300.0),
    (RECONCILE_PAYMENTS, 30.0),
    (VERIFY_LEDGER, 300.0),
)


def task_routes() -> dict[str, dict[str, str]]:
    """Celery ``task_routes``: every task to its service's queue."""
    from shared.config import DATABASES

    routes = {t.name: {"queue": t.queue} for t in TASKS}
    for service in DATABASES:
        routes[handle_event_task(service)] = {"queue": queue_of(service)}
        routes[handle_events_task(service)] = {"queue": queue_of(service)}
        routes[prune_messages_task(service)] = {"queue": queue_of(service)}
    return routes


def subscriptions(service: str) -> tuple[EventSpec, ...]:
    """The events a service receives."""
    return tuple(e for e in EVENTS.values() if service in e.subscribers)
