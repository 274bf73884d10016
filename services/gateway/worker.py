"""The projector: ``pettycash worker gateway`` keeps the gateway's read models from the services'
snapshots, and mails a new alert to the people who act on it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.gateway import readmodels
from services.gateway.mail import Mailer
from services.gateway.notify import mail_new_alert
from services.gateway.readmodels import rm_alerts
from shared.config import Settings
from shared.contracts.catalog import ALERT_RECORDED, subscriptions
from shared.contracts.envelope import Envelope
from shared.db.uow import UnitOfWork
from shared.messaging.runtime import ServiceRuntime


def build(settings: Settings) -> ServiceRuntime:
    """The gateway's runtime: one handler for every snapshot event it subscribes to."""
    runtime = ServiceRuntime("gateway", settings)
    mailer = Mailer(settings.identity.mail_from, settings.identity.smtp_url, settings.var_dir / "mail")

    def on_alert(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
        """Project it; the first time an alert reaches the gateway (whichever of its versions
        comes first), mail whoever acts on it."""
        known = uow.session.scalar(select(rm_alerts.c.id).where(rm_alerts.c.id == int(payload["id"])))
        if readmodels.project(uow.session, envelope.type, payload) and known is None:
            mail_new_alert(uow.session, mailer, payload["body"])

    for spec in subscriptions("gateway"):
        runtime.on_event(spec.name)(on_alert if spec is ALERT_RECORDED else readmodels.on_snapshot)
    return runtime
