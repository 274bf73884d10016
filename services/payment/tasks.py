"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from functools import partial

from services.payment import batches, reports, runs, service
from services.payment.models import OtpEnrolment, Payment, PaymentExecution, PaymentRun, PaymentRunItem, ProviderAttempt
from shared.contracts import catalog
from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries, job, maintenance task and event handlers."""
    # Built (and checked: OTP key, fault rules) before the worker serves anything.
    config = service.PaymentConfig.from_settings(runtime.settings)
    runtime.command(catalog.ENROLL_OTP)(partial(service.enroll_otp, config=config))
    runtime.command(catalog.ACTIVATE_OTP, on_refusal=service.record_refused_activation)(
        partial(service.activate_otp, config=config)
    )
    runtime.command(catalog.EXECUTE_PAYMENT, on_refusal=service.record_refused_execution)(
        partial(service.execute_payment, config=config)
    )
    runtime.command(catalog.VERIFY_SECOND_FACTOR, on_refusal=service.record_refused_sign_in)(
        partial(service.verify_second_factor, config=config)
    )
    runtime.command(catalog.RESET_AUTHENTICATOR, on_refusal=service.record_refused_reset)(
        partial(service.reset_authenticator, config=config)
    )
    runtime.command(catalog.START_PAYMENT_RUN, on_refusal=service.record_refused_run)(
        partial(runs.start_payment_run, config=config)
    )
    runtime.command(catalog.AUTHORISE_PAYMENT_RUN, on_refusal=service.record_refused_run)(
        partial(runs.authorise_payment_run, config=config)
    )
    runtime.command(catalog.CANCEL_PAYMENT_RUN)(partial(runs.cancel_payment_run, config=config))
    runtime.job(catalog.LAUNCH_PAYMENT_RUN)(partial(runs.launch_payment_run, config=config))
    runtime.job(catalog.DISBURSE_PAYMENT)(partial(service.disburse_payment, config=config))
    runtime.job(catalog.DISBURSE_PAYMENTS)(partial(batches.disburse_payments, config=config))
    runtime.maintenance(catalog.RECONCILE_PAYMENTS)(service.reconcile_payments)
    runtime.query(catalog.REPORT_QUERIES["payment"])(reports.run_report)
    runtime.on_event(catalog.REQUISITION_APPROVED.name)(service.on_requisition_approved)
    runtime.on_event(catalog.FUNDS_RESERVED.name)(service.on_funds_reserved)
    runtime.on_event(catalog.REQUISITION_CANCELLED.name)(service.on_requisition_cancelled)
    snapshots = runtime.snapshots
    snapshots.model(
        "payment", catalog.PAYMENT_CHANGED, partial(service.payment_snapshots, config=config), Payment.__table__
    )
    # A lease on the next provider call is the job's business, not the payment's state.
    snapshots.track(Payment, lambda p: ("payment", p.id), quiet=("call_claim", "call_claimed_until", "updated_at"))
    snapshots.track(PaymentExecution, lambda e: ("payment", e.payment_id))
    snapshots.track(ProviderAttempt, lambda a: ("payment", a.payment_id))
    snapshots.model("payment_run", catalog.PAYMENT_RUN_CHANGED, runs.payment_run_snapshots, PaymentRun.__table__)
    snapshots.track(PaymentRun, lambda r: ("payment_run", r.id))
    snapshots.track(PaymentRunItem, lambda i: ("payment_run", i.run_id))
    snapshots.model(
        "authenticator", catalog.AUTHENTICATOR_CHANGED, service.authenticator_snapshots, OtpEnrolment.__table__
    )
    snapshots.track(OtpEnrolment, lambda e: ("authenticator", e.user_id))
