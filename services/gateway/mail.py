"""Outgoing mail, through one small adapter: SMTP when ``PETTYCASH_SMTP_URL`` is set, otherwise
a file per message under ``<var>/mail/`` that a developer opens to follow a link.

``PETTYCASH_SMTP_URL`` is ``smtp://[user:password@]host[:port]`` (STARTTLS when the server
offers it) or ``smtps://...`` (TLS from the start). A message that cannot be sent is logged
without its body (it may hold a one-time link) and reported to the caller as False.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Mailer:
    """Sends plain-text mail from ``sender``."""

    sender: str
    smtp_url: str
    outbox_dir: Path

    def send(self, to: str, subject: str, body: str) -> bool:
        """Send one message; True if the SMTP server took it (or it was written to the folder)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="pettycash")
        message.set_content(body)
        try:
            if self.smtp_url:
                self._smtp(message)
            else:
                self._file(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("mail to %s (%s) not sent: %s: %s", to, subject, type(exc).__name__, exc)
            return False
        return True

    def _file(self, message: EmailMessage) -> None:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        path = self.outbox_dir / name
        path.write_bytes(bytes(message))
        path.chmod(0o600)
        log.info("mail to %s written to %s", message["To"], path)

    def _smtp(self, message: EmailMessage) -> None:
        url = urlsplit(self.smtp_url)
        host, port = url.hostname or "localhost", url.port
        context = ssl.create_default_context()
        if url.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=SMTP_TIMEOUT_SECONDS, context=context)
        else:
            client = smtplib.SMTP(host, port or 587, timeout=SMTP_TIMEOUT_SECONDS)
        with client:
            client.ehlo()
            if url.scheme != "smtps" and client.has_extn("starttls"):
                client.starttls(context=context)
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)
