"""How this service presents payments and enrolments in its replies (private to the service)."""

from __future__ import annotations

from typing import Any

import qrcode
import qrcode.image.svg

from services.payment import domain
from services.payment.models import OtpEnrolment, Payment, PaymentExecution, ProviderAttempt


def qr_svg(data: str) -> str:
    """An SVG QR code of ``data`` (no Pillow needed: qrcode's SVG path factory)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage)
    svg: str = image.to_string(encoding="unicode")
    return svg


def enrolment_secret_body(uri: str) -> dict[str, Any]:
    """What the enrolling user is shown once: the provisioning URI and its QR code."""
    return {"provisioning_uri": uri, "qr_svg": qr_svg(uri)}


def enrolment_body(enrolment: OtpEnrolment) -> dict[str, Any]:
    """An enrolment without its secret."""
    return {
        "user_id": enrolment.user_id,
        "status": enrolment.status,
        "issuer": domain.OTP_ISSUER,
        "digits": domain.OTP_DIGITS,
        "period": domain.OTP_INTERVAL_SECONDS,
        "created_at": enrolment.created_at.isoformat(),
        "activated_at": enrolment.activated_at.isoformat() if enrolment.activated_at else None,
    }


def authenticator_body(enrolment: OtpEnrolment) -> dict[str, Any]:
    """What the gateway keeps of a user's authenticator (its read model): whose, and whether active."""
    return {
        "user_id": enrolment.user_id,
        "username": enrolment.username,
        "status": enrolment.status,
        "activated_at": enrolment.activated_at.isoformat() if enrolment.activated_at else None,
    }


def payment_body(
    payment: Payment,
    max_executions: int,
    executions: list[PaymentExecution] | None = None,
    attempts: list[ProviderAttempt] | None = None,
) -> dict[str, Any]:
    """The JSON body of one payment, with its executions and provider calls when given."""
    body: dict[str, Any] = {
        "id": str(payment.id),
        "requisition_id": str(payment.requisition_id),
        "branch_id": payment.branch_id,
        "state": payment.state,
        "amount": {"minor_units": payment.amount_minor, "currency": payment.currency},
        "payee": {"name": payment.payee_name, "method": payment.payee_method, "account_ref": payment.payee_account_ref},
        "executions": payment.executions,
        "executions_left": domain.executions_left(payment.executions, max_executions),
        "executor_id": payment.executor_id,
        "executor_name": payment.executor_name,
        "provider": payment.provider,
        "provider_reference": payment.provider_reference,
        "last_error": payment.last_error,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
        "completed_at": payment.completed_at.isoformat() if payment.completed_at else None,
    }
    if executions is not None:
        body["history"] = _history(executions, attempts or [])
    return body


def _history(executions: list[PaymentExecution], calls: list[ProviderAttempt]) -> list[dict[str, Any]]:
    """Each execution of a payment, with the provider calls made in it."""
    return [
        {
            "number": e.number,
            "executor_id": e.executor_id,
            "executor_name": e.executor_name,
            "started_at": e.started_at.isoformat(),
            "finished_at": e.finished_at.isoformat() if e.finished_at else None,
            "outcome": e.outcome,
            "reason": e.reason,
            "attempts": [_call_body(a) for a in calls if a.execution == e.number],
        }
        for e in executions
    ]


def _call_body(attempt: ProviderAttempt) -> dict[str, Any]:
    """One provider call as the history shows it."""
    return {
        "number": attempt.number,
        "provider": attempt.provider,
        "outcome": attempt.outcome,
        "detail": attempt.detail,
        "at": attempt.at.isoformat(),
    }
