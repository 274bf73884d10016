"""Disbursement in batches: a payment run sends its payments to the provider a batch per job.

Each payment in a batch goes through the very steps a payment disbursed on its own does
(:func:`service.claim_locked`, :func:`service.call_provider`, :func:`service.record_locked`),
but the batch claims its calls in one transaction, makes them side by side, and records their
outcomes in another,
so a hundred payments make a few commits, not three hundred, and their events leave in
bundles (``shared.messaging.app.EventPublisher.many``). A payment a batch cannot take now
(its next retry not due, another call in flight) or that must be called again later (a
transient error) is handed to its own ``disburse_payment`` job, which waits for its time;
the provider still pays one payment id once, however often anything is delivered.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services.payment.service import (
    CallClaim,
    PaymentConfig,
    ProviderCall,
    call_provider,
    claim_locked,
    locked_payments,
    record_locked,
)
from shared.contracts.catalog import DISBURSE_PAYMENT, DISBURSE_PAYMENTS
from shared.contracts.envelope import Envelope
from shared.db.engine import Database
from shared.db.uow import UnitOfWork
from shared.messaging.runtime import RetryLater


def send_in_batches(uow: UnitOfWork, envelope: Envelope, payment_ids: Sequence[uuid.UUID], size: int) -> None:
    """Send these payments to the disbursement jobs, ``size`` to a job (after the commit): enough
    to make few commits, few enough that a run's jobs spread over the payment workers."""
    ids = [str(payment_id) for payment_id in payment_ids]
    for start in range(0, len(ids), size):
        uow.emit(envelope.caused(DISBURSE_PAYMENTS.name, {"payment_ids": ids[start : start + size]}))


def disburse_payments(
    db: Database, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Claim the batch's calls, make them side by side (none inside a transaction: each is a
    wait on the provider, and each lease is as long as a single call's), record what they came to."""
    claims = _claim_all(db, envelope, payload["payment_ids"], config)
    calls = list(zip(claims, _call_all(db, claims, config), strict=True))
    handed = _record_all(db, envelope, calls, config)
    return {"payments": len(payload["payment_ids"]), "called": len(calls), "handed_on": handed}


def _call_all(db: Database, claims: Sequence[CallClaim], config: PaymentConfig) -> list[ProviderCall]:
    """Each claimed call made, up to ``config.calls_at_once`` of them side by side."""
    if config.calls_at_once <= 1 or len(claims) <= 1:
        return [call_provider(db, claim, config) for claim in claims]
    with ThreadPoolExecutor(max_workers=min(config.calls_at_once, len(claims))) as pool:
        return list(pool.map(lambda claim: call_provider(db, claim, config), claims))


def _claim_all(
    db: Database, envelope: Envelope, payment_ids: Sequence[uuid.UUID], config: PaymentConfig
) -> list[CallClaim]:
    """Lease the next call of each payment that has one to make now; hand the others that are
    still processing to their own jobs."""
    claims = []
    with db.uow() as uow:
        for payment in locked_payments(uow.session, payment_ids):
            try:
                claim = claim_locked(uow, envelope, payment, config)
            except RetryLater:
                _hand_on(uow, envelope, payment.id)
                continue
            if isinstance(claim, CallClaim):
                claims.append(claim)
        uow.commit()
    return claims


def _record_all(
    db: Database, envelope: Envelope, calls: Sequence[tuple[CallClaim, ProviderCall]], config: PaymentConfig
) -> int:
    """Record each call on its payment, in one transaction; a payment to be called again goes
    to its own job (which waits for the retry's time). How many were handed on."""
    if not calls:
        return 0
    handed = 0
    with db.uow() as uow:
        payments = {p.id: p for p in locked_payments(uow.session, [claim.order.payment_id for claim, _ in calls])}
        for claim, call in calls:
            if record_locked(uow, envelope, payments[claim.order.payment_id], claim, call, config) is not None:
                _hand_on(uow, envelope, claim.order.payment_id)
                handed += 1
        uow.commit()
    return handed


def _hand_on(uow: UnitOfWork, envelope: Envelope, payment_id: uuid.UUID) -> None:
    uow.emit(envelope.caused(DISBURSE_PAYMENT.name, {"payment_id": str(payment_id)}))
