"""The reconciler re-drives payments stuck in ``processing``; the provider's books prove one payment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.payment import domain
from services.payment.models import Payment, PaymentExecution, ProviderTransfer
from shared.config import Settings
from shared.contracts import catalog
from shared.db.engine import Database
from shared.messaging.app import event_publisher, make_celery
from tests.payment_support import (
    Person,
    events,
    mobile,
    new_person,
    reconcile,
    requisition_status,
    reserved_requisition,
    wait_payment,
)
from tests.support import Api, Stack, scalar, wait_for


def stranded(settings: Settings, dbs: dict[str, Database], requisition: dict[str, Any], executor: Person) -> uuid.UUID:
    """A payment as ``execute_payment`` leaves it, whose disbursement message was then lost.

    The rows and the PaymentStarted event are what that command commits and publishes; the
    job message never arrives (a broker that lost it, a worker that died holding it).
    """
    rid = uuid.UUID(requisition["id"])
    payment_id = domain.payment_id_for(rid)
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    with dbs["payment"].uow() as uow:
        uow.session.add(
            Payment(
                id=payment_id,
                requisition_id=rid,
                branch_id=requisition["branch_id"],
                region_id=requisition["region_id"],
                amount_minor=requisition["amount"]["minor_units"],
                currency=requisition["amount"]["currency"],
                payee_name=requisition["payee"]["name"],
                payee_method=requisition["payee"]["method"],
                payee_account_ref=requisition["payee"].get("account_ref", ""),
                state="processing",
                executions=1,
                attempts=0,
                executor_id=executor.user_id,
                executor_name=executor.username,
                redrives=0,
                created_at=long_ago,
                updated_at=long_ago,
            )
        )
        uow.session.flush()
        uow.session.add(
            PaymentExecution(
                payment_id=payment_id,
                number=1,
                executor_id=executor.user_id,
                executor_name=executor.username,
                started_at=long_ago,
                outcome="processing",
                reason="",
            )
        )
        uow.commit()
    started = {
        "requisition_id": str(rid),
        "payment_id": str(payment_id),
        "executor_id": executor.user_id,
        "executor_name": executor.username,
    }
    envelope = {
        "version": 1,
        "type": catalog.PAYMENT_STARTED.name,
        "message_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "occurred_at": long_ago.isoformat(),
        "actor": {"user_id": executor.user_id, "username": executor.username, "roles": ["treasury"]},
        "payload": started,
    }
    event_publisher(make_celery(settings, "test-payment"))(envelope)
    wait_for(
        lambda: (
            scalar(dbs["requisition"], "SELECT status FROM requisitions WHERE id = :r", r=rid) == "payment_processing"
        ),
        15,
        what="the requisition to see the payment start",
    )
    return payment_id


def test_a_stuck_payment_is_re_driven_and_paid_exactly_once(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database], stack: Stack
) -> None:
    requisition = reserved_requisition(api, tokens, settings, dbs)
    executor = new_person(dbs)
    payment_id = stranded(settings, dbs, requisition, executor)

    reconcile(settings, stack, datetime.now(UTC) + timedelta(seconds=1))
    paid = wait_payment(api, tokens["tom"], requisition["id"], "completed")

    assert paid["id"] == str(payment_id)
    assert scalar(dbs["payment"], "SELECT redrives FROM payments WHERE id = :p", p=payment_id) == 1
    calls = scalar(dbs["payment"], "SELECT calls FROM provider_transfers WHERE idempotency_key = :p", p=payment_id)
    assert calls == 1
    wait_for(lambda: requisition_status(api, tokens["alice"], requisition["id"]) == "paid", 15, what="paid")
    # Its being stuck was an alert, which resolved itself once the payment went through.
    resolved_by = "SELECT resolved_by FROM alerts WHERE kind = 'payment_stuck' AND subject = :s"
    subject = f"payment:{payment_id}"
    by = wait_for(lambda: scalar(dbs["requisition"], resolved_by, s=subject), 15, what="the stuck alert resolved")
    assert by == "system"

    # Completed is not stuck: later runs of the reconciler leave it alone.
    reconcile(settings, stack, datetime.now(UTC) + timedelta(hours=1))
    reconcile(settings, stack, datetime.now(UTC) + timedelta(hours=2))
    assert scalar(dbs["payment"], "SELECT redrives FROM payments WHERE id = :p", p=payment_id) == 1
    assert len(events(dbs["payment"], "PaymentCompleted", requisition["id"])) == 1


def test_a_payment_the_provider_made_before_the_worker_died_is_not_made_again(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database], stack: Stack
) -> None:
    requisition = reserved_requisition(api, tokens, settings, dbs)
    executor = new_person(dbs)
    payment_id = stranded(settings, dbs, requisition, executor)
    # The provider's books say it paid; the worker died before recording that.
    with dbs["payment"].uow() as uow:
        uow.session.add(
            ProviderTransfer(
                provider="cash",
                idempotency_key=payment_id,
                calls=1,
                amount_minor=requisition["amount"]["minor_units"],
                currency=requisition["amount"]["currency"],
                account_ref="",
                reference="CASH-PAIDBEFORE",
                first_call_at=datetime.now(UTC) - timedelta(minutes=10),
                paid_at=datetime.now(UTC) - timedelta(minutes=10),
            )
        )
        uow.commit()

    reconcile(settings, stack, datetime.now(UTC))
    paid = wait_payment(api, tokens["tom"], requisition["id"], "completed")

    assert paid["provider_reference"] == "CASH-PAIDBEFORE"
    rows = scalar(dbs["payment"], "SELECT count(*) FROM provider_transfers WHERE idempotency_key = :p", p=payment_id)
    assert rows == 1
    completed = events(dbs["payment"], "PaymentCompleted", requisition["id"])
    assert [c["provider_reference"] for c in completed] == ["CASH-PAIDBEFORE"]


def test_a_payment_making_progress_is_not_re_driven(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database], stack: Stack
) -> None:
    requisition = reserved_requisition(api, tokens, settings, dbs)
    executor = new_person(dbs)
    payment_id = stranded(settings, dbs, requisition, executor)

    # Ten minutes without progress is stuck as of now, not as of nine and a half minutes ago.
    reconcile(settings, stack, datetime.now(UTC) - timedelta(minutes=9, seconds=30))
    assert scalar(dbs["payment"], "SELECT state FROM payments WHERE id = :p", p=payment_id) == "processing"
    assert scalar(dbs["payment"], "SELECT redrives FROM payments WHERE id = :p", p=payment_id) == 0

    reconcile(settings, stack, datetime.now(UTC))
    wait_payment(api, tokens["tom"], requisition["id"], "completed")


def test_a_disbursement_delivered_many_times_at_once_pays_once(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    requisition = reserved_requisition(api, tokens, settings, dbs, payee=mobile("0712-FAIL-TRANSIENT-1"))
    payment_id = stranded(settings, dbs, requisition, new_person(dbs))
    spec = catalog.DISBURSE_PAYMENT
    envelope = {
        "version": 1,
        "type": spec.name,
        "message_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "occurred_at": datetime.now(UTC).isoformat(),
        "actor": {"user_id": "system", "username": "system", "roles": ["system"]},
        "payload": {"payment_id": str(payment_id)},
    }
    app = make_celery(settings, "test")
    for _ in range(6):  # the same message, redelivered: every worker thread gets a copy
        app.send_task(spec.name, args=[envelope], queue=spec.queue, task_id=str(uuid.uuid4()))

    paid = wait_payment(api, tokens["tom"], requisition["id"], "completed")

    # One transient failure, one retry that paid: the duplicates waited their turn.
    assert [a["outcome"] for a in paid["history"][0]["attempts"]] == ["transient", "paid"]
    calls = scalar(dbs["payment"], "SELECT calls FROM provider_transfers WHERE idempotency_key = :p", p=payment_id)
    assert calls == 2
    assert len(events(dbs["payment"], "PaymentCompleted", requisition["id"])) == 1
