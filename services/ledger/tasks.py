"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from services.ledger import cash, days, reports, service
from services.ledger.models import Account, BalanceCheck, CashCount, FloatDay, Replenishment
from shared.contracts import catalog
from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries and event handlers on its runtime."""
    runtime.command(catalog.OPEN_FLOAT)(service.open_float)
    runtime.command(catalog.REQUEST_REPLENISHMENT)(service.request_replenishment)
    runtime.command(catalog.DECIDE_REPLENISHMENT)(service.decide_replenishment)
    runtime.command(catalog.RECORD_CASH_COUNT)(cash.record_cash_count)
    runtime.command(catalog.DECIDE_VARIANCE)(cash.decide_variance)
    runtime.maintenance(catalog.VERIFY_LEDGER)(service.verify_ledger)
    runtime.query(catalog.REPORT_QUERIES["ledger"])(reports.run_report)
    runtime.on_event(catalog.REQUISITION_APPROVED.name)(service.on_requisition_approved)
    runtime.on_event(catalog.PAYMENT_COMPLETED.name)(service.on_payment_completed)
    runtime.on_event(catalog.PAYMENT_FAILED.name)(service.on_payment_failed)
    runtime.on_event(catalog.REQUISITION_CANCELLED.name)(service.on_requisition_cancelled)
    runtime.on_event(catalog.BRANCH_DIRECTORY_UPDATED.name)(service.on_branch_directory_updated)
    runtime.lock_for_bundles(service.lock_bundle_accounts)
    register_read_models(runtime)


def register_read_models(runtime: ServiceRuntime) -> None:
    """What the gateway projects from this service, and which rows change it."""
    snapshots = runtime.snapshots
    snapshots.model("account", catalog.ACCOUNT_CHANGED, service.account_snapshots, Account.__table__)
    snapshots.model("ledger_check", catalog.DOCUMENT_CHANGED, service.ledger_check_snapshot)
    snapshots.model("ledger_totals", catalog.DOCUMENT_CHANGED, service.ledger_totals_snapshot)
    snapshots.model(
        "replenishment", catalog.REPLENISHMENT_CHANGED, service.replenishment_snapshots, Replenishment.__table__
    )
    snapshots.model("float_day", catalog.FLOAT_DAY_CHANGED, days.float_day_snapshots, FloatDay.__table__)
    snapshots.model("cash_count", catalog.CASH_COUNT_CHANGED, cash.cash_count_snapshots, CashCount.__table__)
    snapshots.track(CashCount, lambda c: ("cash_count", c.id))
    snapshots.track(Account, lambda a: ("account", a.id))
    snapshots.track(Replenishment, lambda r: ("replenishment", r.id))
    snapshots.track(BalanceCheck, lambda _c: ("ledger_check", "ledger_check"))
