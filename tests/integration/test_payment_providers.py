"""The built-in providers on the real payment database: one payment per idempotency key, whatever happens."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.payment.providers import (
    BookedProvider,
    Disbursement,
    Fault,
    FaultKind,
    PermanentProviderError,
    Receipt,
    TransientProviderError,
)
from shared.contracts.money import Money
from shared.db.engine import Database
from tests.support import scalar


def order(account_ref: str = "0011223344") -> Disbursement:
    return Disbursement(uuid.uuid4(), Money("KES", 125_000), "Davis & Shirtliff", account_ref)


def books(db: Database, key: uuid.UUID) -> tuple[int, str | None]:
    from sqlalchemy import text

    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT calls, reference FROM provider_transfers WHERE idempotency_key = :k"), {"k": key}
        ).one()
        return int(row.calls), row.reference


def test_a_repeated_call_answers_with_the_first_payment(dbs: dict[str, Database]) -> None:
    provider = BookedProvider("bank", dbs["payment"])
    paying = order()

    first = provider.disburse(paying)
    again = provider.disburse(paying)

    assert again == first
    assert books(dbs["payment"], paying.payment_id) == (2, first.reference)


def test_concurrent_calls_with_one_key_pay_once(dbs: dict[str, Database]) -> None:
    provider = BookedProvider("mobile_money", dbs["payment"])
    paying = order()
    barrier = threading.Barrier(6)

    def call(_: int) -> Receipt:
        barrier.wait()
        return provider.disburse(paying)

    with ThreadPoolExecutor(6) as pool:
        receipts = set(pool.map(call, range(6)))

    assert len(receipts) == 1
    assert books(dbs["payment"], paying.payment_id) == (6, next(iter(receipts)).reference)


def test_transient_faults_fail_the_first_calls_then_it_pays(dbs: dict[str, Database]) -> None:
    provider = BookedProvider("bank", dbs["payment"], Fault(FaultKind.TRANSIENT, 2))
    paying = order()
    for _ in range(2):
        with pytest.raises(TransientProviderError):
            provider.disburse(paying)
    assert books(dbs["payment"], paying.payment_id) == (2, None)
    receipt = provider.disburse(paying)
    assert books(dbs["payment"], paying.payment_id) == (3, receipt.reference)


def test_a_permanent_fault_never_pays(dbs: dict[str, Database]) -> None:
    provider = BookedProvider("bank", dbs["payment"], Fault(FaultKind.PERMANENT))
    paying = order()
    for _ in range(3):
        with pytest.raises(PermanentProviderError):
            provider.disburse(paying)
    assert books(dbs["payment"], paying.payment_id) == (3, None)


def test_a_lost_reply_still_paid_and_the_retry_learns_it(dbs: dict[str, Database]) -> None:
    provider = BookedProvider("mobile_money", dbs["payment"], Fault(FaultKind.LOST_REPLY))
    paying = order()
    with pytest.raises(TransientProviderError):
        provider.disburse(paying)
    calls, reference = books(dbs["payment"], paying.payment_id)
    assert (calls, reference is not None) == (1, True)
    assert provider.disburse(paying).reference == reference


def test_latency_is_spent_outside_the_providers_transaction(dbs: dict[str, Database]) -> None:
    slept: list[float] = []
    provider = BookedProvider("bank", dbs["payment"], latency_ms=250, sleep=slept.append)
    provider.disburse(order())
    assert slept == [0.25]


def test_one_key_per_provider_books(dbs: dict[str, Database]) -> None:
    paying = order()
    BookedProvider("cash", dbs["payment"]).disburse(paying)
    assert (
        scalar(
            dbs["payment"], "SELECT count(*) FROM provider_transfers WHERE idempotency_key = :k", k=paying.payment_id
        )
        == 1
    )
