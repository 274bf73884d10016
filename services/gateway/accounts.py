"""Signing in and looking after one's own account: passwords, lockout, recovery codes,
one-time password links, personal API tokens.

Each use case runs in one transaction of the gateway's database and records its security
events in it. Refusals are :class:`Refused` (a status, a stable problem type, words), which
the views answer as problems.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from services.gateway import identity
from services.gateway.models import ApiToken, PasswordLink, RecoveryCode, User
from services.gateway.passwords import Passwords, WeakPassword, check_strength
from services.gateway.readmodels import rm_authenticators
from services.gateway.security import EventType, SecurityLog
from services.gateway.sessions import SessionStore, Stage
from shared.config import IdentitySettings
from shared.contracts.envelope import Actor
from shared.contracts.roles import SECOND_FACTOR_ROLES
from shared.db.engine import Database

RECOVERY_CODES = 10
# 20 characters of 32 (100 bits): unguessable, so a plain SHA-256 suffices to store them.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 20
INVITATION = "invitation"
RESET = "reset"
INVALID_CREDENTIALS = "The username or password is wrong."


class Refused(Exception):
    """A use case said no: ``status``, a problem ``code``, ``detail`` in words, and extensions."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def digest(secret: str) -> str:
    """The stored form of a high-entropy secret (a link token, a recovery code)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_recovery_code(code: str) -> str:
    """A recovery code as typed (any case, dashes, spaces) in its stored form."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _subject(user: User) -> tuple[str, str]:
    return str(user.id), user.username


@dataclass(frozen=True)
class SignIn:
    """A password accepted: whose, and the stage their session begins in."""

    user_id: str
    username: str
    stage: str


@dataclass(frozen=True)
class Link:
    """A one-time password link just made: its URL (shown or mailed once) and where it goes."""

    url: str
    email: str | None
    expires_at: datetime


@dataclass
class Accounts:
    """The account use cases over the gateway's database."""

    db: Database
    settings: IdentitySettings
    passwords: Passwords
    security: SecurityLog
    sessions: SessionStore
    clock: Callable[[], datetime]

    # -- signing in -------------------------------------------------------------------

    def find_user(self, session: Session, login: str) -> User | None:
        """The user a sign-in names, by username or e-mail address (any case)."""
        login = login.strip()
        return session.scalar(
            select(User).where(or_(User.username == login, func.lower(User.email) == login.lower())).limit(1)
        )

    def sign_in(self, login: str, password: str) -> SignIn:
        """Check a password; the stage the new session begins in, or :class:`Refused`.

        An unknown user, an inactive one, one without a password and a wrong password are all
        answered alike, after the same Argon2 work (a dummy hash stands in).
        """
        now = self.clock()
        with self.db.uow() as uow:
            found = self.find_user(uow.session, login)
            user = found if found is not None and found.is_active else None
            if user is not None and user.locked_until and user.locked_until > now:
                raise self._locked(user, now)
            matches = self.passwords.verify(user.password_hash if user is not None else None, password)
            if not matches or user is None:
                self._failed(uow.session, user, login, now)
                uow.commit()
                raise Refused(401, "invalid-credentials", INVALID_CREDENTIALS)
            stage = self._stage_after_password(uow.session, user)
            self._succeeded(uow.session, user, password, now, stage)
            uow.commit()
            return SignIn(str(user.id), user.username, stage)

    def _locked(self, user: User, now: datetime) -> Refused:
        wait = max(1, int((user.locked_until - now).total_seconds())) if user.locked_until else 1
        return Refused(
            429,
            "account-locked",
            "Too many wrong passwords: this account is locked for now. Try again later, or ask an administrator.",
            retry_after=wait,
        )

    def _failed(self, session: Session, user: User | None, login: str, now: datetime) -> None:
        if user is None:
            self.security.add(session, EventType.SIGN_IN_FAILED, subject=(None, login[:64]), reason="unknown-or-wrong")
            return
        user.failed_sign_ins = (user.failed_sign_ins or 0) + 1
        self.security.add(session, EventType.SIGN_IN_FAILED, subject=_subject(user), failures=user.failed_sign_ins)
        if user.failed_sign_ins >= self.settings.lockout_failures:
            user.locked_until = now + timedelta(seconds=self.settings.lockout_seconds)
            user.failed_sign_ins = 0
            self.security.add(
                session, EventType.ACCOUNT_LOCKED, subject=_subject(user), until=user.locked_until.isoformat()
            )

    def _stage_after_password(self, session: Session, user: User) -> str:
        """Signed in, unless the user's roles need a second factor: its code, or an enrolment first."""
        if not {r.role for r in user.roles} & SECOND_FACTOR_ROLES:
            return Stage.SIGNED_IN
        status = session.scalar(select(rm_authenticators.c.status).where(rm_authenticators.c.id == str(user.id)))
        return Stage.SECOND_FACTOR if status == "active" else Stage.ENROL

    def _succeeded(self, session: Session, user: User, password: str, now: datetime, stage: str) -> None:
        user.failed_sign_ins = 0
        user.locked_until = None
        if user.password_hash and self.passwords.needs_rehash(user.password_hash):
            user.password_hash = self.passwords.hash(password)
        if stage == Stage.SIGNED_IN:
            user.last_sign_in_at = now
            self.security.add(session, EventType.SIGN_IN_SUCCEEDED, subject=_subject(user), second_factor=None)

    def second_factor_passed(self, actor: Actor, method: str) -> None:
        """The code (or a recovery code) was right: the sign-in is complete."""
        with self.db.uow() as uow:
            uow.session.execute(
                update(User).where(User.id == uuid.UUID(actor.user_id)).values(last_sign_in_at=self.clock())
            )
            self.security.add(
                uow.session,
                EventType.SIGN_IN_SUCCEEDED,
                subject=(actor.user_id, actor.username),
                second_factor=method,
            )
            uow.commit()

    def second_factor_failed(self, actor: Actor, reason: str) -> None:
        """A wrong, reused or locked-out code at sign-in."""
        self.security.record(EventType.SECOND_FACTOR_FAILED, subject=(actor.user_id, actor.username), reason=reason)

    def use_recovery_code(self, actor: Actor, code: str) -> int:
        """Spend one recovery code; how many are left, or :class:`Refused` if it is not one of theirs."""
        now = self.clock()
        with self.db.uow() as uow:
            user_id = uuid.UUID(actor.user_id)
            spent = uow.session.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.user_id == user_id,
                    RecoveryCode.code_hash == digest(normalise_recovery_code(code)),
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=now)
            ).rowcount
            if not spent:
                self.security.add(
                    uow.session,
                    EventType.SECOND_FACTOR_FAILED,
                    subject=(actor.user_id, actor.username),
                    reason="recovery-code",
                )
                uow.commit()
                raise Refused(422, "recovery-code-invalid", "That recovery code is not valid, or was used already.")
            left = uow.session.scalar(
                select(func.count()).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            )
            self.security.add(
                uow.session, EventType.RECOVERY_CODE_USED, subject=(actor.user_id, actor.username), left=left
            )
            uow.commit()
            return int(left or 0)

    def new_recovery_codes(self, actor: Actor) -> list[str]:
        """Replace a user's recovery codes with fresh ones, shown this once."""
        codes = [
            "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH)) for _ in range(RECOVERY_CODES)
        ]
        now = self.clock()
        with self.db.uow() as uow:
            user_id = uuid.UUID(actor.user_id)
            uow.session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
            )
            uow.session.add_all(RecoveryCode(user_id=user_id, code_hash=digest(c), created_at=now) for c in codes)
            self.security.add(
                uow.session, EventType.RECOVERY_CODES_CREATED, actor=actor, subject=(actor.user_id, actor.username)
            )
            uow.commit()
        return [f"{c[:5]}-{c[5:10]}-{c[10:15]}-{c[15:]}" for c in codes]

    def recovery_codes_left(self, user_id: str) -> int:
        """How many unused recovery codes a user has."""
        with self.db.uow() as uow:
            return int(
                uow.session.scalar(
                    select(func.count()).where(
                        RecoveryCode.user_id == uuid.UUID(user_id), RecoveryCode.used_at.is_(None)
                    )
                )
                or 0
            )

    # -- one's own account --------------------------------------------------------------

    def check_password(self, actor: Actor, password: str) -> None:
        """The step-up before a change of credentials: the user's current password, or :class:`Refused`."""
        with self.db.uow() as uow:
            user = uow.session.get(User, uuid.UUID(actor.user_id))
            if user is None or not self.passwords.verify(user.password_hash, password):
                self.security.add(
                    uow.session, EventType.STEP_UP_FAILED, actor=actor, subject=(actor.user_id, actor.username)
                )
                uow.commit()
                raise Refused(403, "step-up-failed", "Your current password is not right.")

    def change_password(self, actor: Actor, current: str, new: str) -> None:
        """Change one's password (the current one proves it is them); every other session ends."""
        self.check_password(actor, current)
        with self.db.uow() as uow:
            user = uow.session.get_one(User, uuid.UUID(actor.user_id))
            self._set_password(uow.session, user, new)
            self.security.add(uow.session, EventType.PASSWORD_CHANGED, actor=actor, subject=_subject(user))
            uow.commit()
        self.sessions.end_user(actor.user_id)

    def _set_password(self, session: Session, user: User, password: str) -> None:
        """Store a new password, if strong enough; sessions begun before now are over."""
        try:
            check_strength(password, [user.username, user.full_name, user.email or ""])
        except WeakPassword as exc:
            raise Refused(422, "weak-password", str(exc)) from exc
        now = self.clock()
        user.password_hash = self.passwords.hash(password)
        user.password_changed_at = now
        user.sessions_valid_after = now
        user.failed_sign_ins = 0
        user.locked_until = None

    def sign_out_everywhere(self, actor: Actor) -> int:
        """End every session of the user (this one included); how many were stored."""
        with self.db.uow() as uow:
            uow.session.execute(
                update(User).where(User.id == uuid.UUID(actor.user_id)).values(sessions_valid_after=self.clock())
            )
            self.security.add(
                uow.session, EventType.SIGNED_OUT_EVERYWHERE, actor=actor, subject=(actor.user_id, actor.username)
            )
            uow.commit()
        return self.sessions.end_user(actor.user_id)

    # -- one-time password links ------------------------------------------------------

    def make_link(self, session: Session, user: User, purpose: str) -> Link:
        """A new one-time link that sets the user's password (earlier unused ones of theirs lapse)."""
        now = self.clock()
        hours = self.settings.invitation_hours if purpose == INVITATION else self.settings.password_reset_hours
        session.execute(
            update(PasswordLink)
            .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
            .values(used_at=now)
        )
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(hours=hours)
        session.add(
            PasswordLink(user_id=user.id, purpose=purpose, token_hash=digest(token), created_at=now, expires_at=expires)
        )
        return Link(f"{self.settings.public_url}/password/set?token={token}", user.email, expires)

    def link_user(self, token: str) -> User | None:
        """The user an unused, unexpired link would set the password of."""
        with self.db.uow() as uow:
            link = self._live_link(uow.session, token)
            if link is None:
                return None
            user = uow.session.get(User, link.user_id)
            if user is not None:
                uow.session.expunge(user)
            return user

    def _live_link(self, session: Session, token: str) -> PasswordLink | None:
        link = session.scalar(select(PasswordLink).where(PasswordLink.token_hash == digest(token)))
        if link is None or link.used_at is not None or link.expires_at <= self.clock():
            return None
        return link

    def use_link(self, token: str, password: str) -> str:
        """Set a password through a one-time link; the username, or :class:`Refused`."""
        with self.db.uow() as uow:
            link = self._live_link(uow.session, token)
            user = uow.session.get(User, link.user_id) if link else None
            if link is None or user is None or not user.is_active:
                raise Refused(404, "link-not-valid", "This link is not valid any more: ask for a new one.")
            self._set_password(uow.session, user, password)
            link.used_at = self.clock()
            self.security.add(uow.session, EventType.PASSWORD_CHANGED, subject=_subject(user), via=link.purpose)
            uow.commit()
            user_id, username = str(user.id), user.username
        self.sessions.end_user(user_id)
        return username

    # -- personal API tokens ------------------------------------------------------------

    def create_token(
        self, actor: Actor, name: str, *, read_only: bool, expires_in_days: int | None
    ) -> tuple[str, dict[str, Any]]:
        """A personal API token for the actor: the secret (shown once) and its listing."""
        now = self.clock()
        expires = now + timedelta(days=expires_in_days) if expires_in_days else None
        with self.db.uow() as uow:
            user = uow.session.get_one(User, uuid.UUID(actor.user_id))
            secret, row = identity.new_token(uow.session, user, name, read_only=read_only, expires_at=expires)
            uow.session.flush()
            self.security.add(
                uow.session,
                EventType.TOKEN_CREATED,
                actor=actor,
                subject=_subject(user),
                token=str(row.id),
                read_only=read_only,
            )
            body = token_body(row, now)
            uow.commit()
        return secret, body

    def tokens(self, user_id: str) -> list[dict[str, Any]]:
        """A user's API tokens, newest first (never their secrets)."""
        now = self.clock()
        with self.db.uow() as uow:
            rows = uow.session.scalars(
                select(ApiToken).where(ApiToken.user_id == uuid.UUID(user_id)).order_by(ApiToken.created_at.desc())
            )
            return [token_body(row, now) for row in rows]

    def revoke_token(self, actor: Actor, user_id: str, token_id: uuid.UUID) -> None:
        """Revoke one of a user's tokens (by its owner or an admin); :class:`Refused` if there is none."""
        with self.db.uow() as uow:
            row = uow.session.get(ApiToken, token_id)
            if row is None or str(row.user_id) != user_id:
                raise Refused(404, "not-found", "No such token.")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                owner = uow.session.get_one(User, row.user_id)
                self.security.add(
                    uow.session, EventType.TOKEN_REVOKED, actor=actor, subject=_subject(owner), token=str(row.id)
                )
            uow.commit()


def token_body(row: ApiToken, now: datetime) -> dict[str, Any]:
    """How a token is listed."""
    expired = row.expires_at is not None and row.expires_at <= now
    return {
        "id": str(row.id),
        "name": row.name,
        "kind": row.kind,
        "read_only": row.read_only,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "active": row.revoked_at is None and not expired,
    }
