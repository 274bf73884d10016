"""Server-side sessions for browsers: Flask's ``session`` kept in Redis (embedded mode: the
gateway's database), the cookie carrying only a random id.

The cookie is ``HttpOnly`` and ``SameSite=Lax``, ``Secure`` when the request came over TLS.
The store keys a session by the SHA-256 of its id, so a copy of the store signs nobody in.
A session ends after :attr:`IdentitySettings.session_idle_seconds` without a request, and
:attr:`~IdentitySettings.session_absolute_seconds` after its sign-in whatever happens; its
id changes at sign-in (so an id planted before cannot ride on it: no fixation) and whenever
its stage changes. Every session of a user can be ended at once (:meth:`SessionStore.end_user`),
and each is also checked against the user's ``sessions_valid_after`` at every request.

Flask-WTF keeps its CSRF secret in this session too, so a CSRF token is bound to one session.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import redis
from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete, select
from werkzeug.datastructures import CallbackDict

from services.gateway.models import WebSession
from shared.config import IdentitySettings
from shared.db.engine import Database
from shared.db.types import utcnow

COOKIE = "pettycash_session"
# A session's last request is written back at most this often (each write renews its idle
# timeout), so a page's burst of requests costs the store one write, not one each.
TOUCH_SECONDS = 60
# An anonymous session holds only the CSRF secret of a sign-in form.
ANONYMOUS_SECONDS = 3600
# A sign-in waits this long for its second factor (or its first authenticator) before it lapses.
PENDING_SECONDS = 15 * 60


class Stage(StrEnum):
    """How far a session has come: a stage names what it may do."""

    ANONYMOUS = "anonymous"
    SECOND_FACTOR = "second-factor"  # the password was right; the code from the authenticator is next
    ENROL = "enrol"  # the password was right; a privileged user enrols an authenticator first
    SIGNED_IN = "signed-in"


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """The session of one request; ``sid`` is None until it is first saved."""

    def __init__(self, data: dict[str, Any] | None = None, sid: str | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.modified = False
        self.rotate = False  # a new id at the next save (sign-in, a change of stage)
        self.ended = False  # deleted at the next save (sign-out, expiry)

    def begin(self, user_id: str, stage: str, now: datetime) -> None:
        """Start a user's session in ``stage`` (its id changes; nothing of an earlier one stays)."""
        self.clear()
        at = now.isoformat()
        self.update(user_id=user_id, stage=stage, created_at=at, began_at=at, last_seen_at=at)
        self.rotate = True

    def renew(self, now: datetime) -> None:
        """Keep this session when every other one of its user ends (a password change): a new id,
        begun now, so the user's ``sessions_valid_after`` spares it."""
        self["began_at"] = now.isoformat()
        self.rotate = True

    def advance(self, stage: str, now: datetime) -> None:
        """Move to another stage (its id changes, as at sign-in)."""
        self["stage"] = stage
        if stage == Stage.SIGNED_IN:
            self["signed_in_at"] = now.isoformat()
        self.rotate = True

    def end(self) -> None:
        """Sign out: the stored session is deleted and the cookie cleared."""
        self.clear()
        self.ended = True

    @property
    def user_id(self) -> str | None:
        return self.get("user_id")

    @property
    def stage(self) -> str:
        return str(self.get("stage", Stage.ANONYMOUS))

    def at(self, key: str) -> datetime | None:
        raw = self.get(key)
        return datetime.fromisoformat(raw) if raw else None


class SessionStore(Protocol):
    """Where sessions are kept."""

    def load(self, id_hash: str) -> dict[str, Any] | None: ...

    def save(self, id_hash: str, data: dict[str, Any], ttl_seconds: int) -> None: ...

    def delete(self, id_hash: str) -> None: ...

    def end_user(self, user_id: str) -> int:
        """End every session of a user; how many."""
        ...


class RedisSessionStore:
    """Sessions in Redis: one key each with the idle timeout as its TTL, and a set per user."""

    PREFIX = "pettycash:session:"
    USER_PREFIX = "pettycash:user-sessions:"

    def __init__(self, url: str, absolute_seconds: int) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.absolute_seconds = absolute_seconds

    def load(self, id_hash: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.PREFIX + id_hash)
        return None if raw is None else dict(json.loads(raw))

    def save(self, id_hash: str, data: dict[str, Any], ttl_seconds: int) -> None:
        pipe = self.redis.pipeline()
        pipe.set(self.PREFIX + id_hash, json.dumps(data), ex=max(1, ttl_seconds))
        if data.get("user_id"):
            key = self.USER_PREFIX + data["user_id"]
            pipe.sadd(key, id_hash)
            pipe.expire(key, self.absolute_seconds + TOUCH_SECONDS)
        pipe.execute()

    def delete(self, id_hash: str) -> None:
        data = self.load(id_hash)
        pipe = self.redis.pipeline()
        pipe.delete(self.PREFIX + id_hash)
        if data and data.get("user_id"):
            pipe.srem(self.USER_PREFIX + data["user_id"], id_hash)
        pipe.execute()

    def end_user(self, user_id: str) -> int:
        key = self.USER_PREFIX + user_id
        hashes = [h.decode() for h in self.redis.smembers(key)]
        pipe = self.redis.pipeline()
        for id_hash in hashes:
            pipe.delete(self.PREFIX + id_hash)
        pipe.delete(key)
        results = pipe.execute()
        return sum(int(n) for n in results[: len(hashes)])


class DatabaseSessionStore:
    """Sessions in the gateway's database (embedded mode, where there is no Redis)."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def load(self, id_hash: str) -> dict[str, Any] | None:
        with self.db.uow() as uow:
            row = uow.session.get(WebSession, id_hash)
            if row is None or row.expires_at <= self.clock():
                return None
            return dict(row.data)

    def save(self, id_hash: str, data: dict[str, Any], ttl_seconds: int) -> None:
        with self.db.uow() as uow:
            session = uow.session
            # Expired rows go whenever a session is written: the table stays small without a sweeper.
            session.execute(delete(WebSession).where(WebSession.expires_at <= self.clock()))
            row = session.get(WebSession, id_hash) or WebSession(id_hash=id_hash)
            row.user_id = data.get("user_id")
            row.data = data
            row.expires_at = self.clock() + timedelta(seconds=ttl_seconds)
            session.add(row)
            uow.commit()

    def delete(self, id_hash: str) -> None:
        with self.db.uow() as uow:
            uow.session.execute(delete(WebSession).where(WebSession.id_hash == id_hash))
            uow.commit()

    def end_user(self, user_id: str) -> int:
        with self.db.uow() as uow:
            ids = list(uow.session.scalars(select(WebSession.id_hash).where(WebSession.user_id == user_id)))
            uow.session.execute(delete(WebSession).where(WebSession.user_id == user_id))
            uow.commit()
        return len(ids)


def make_store(settings: IdentitySettings, db: Database, clock: Callable[[], datetime]) -> SessionStore:
    """Redis when a session store URL is configured, else the gateway's database."""
    if settings.session_store_url:
        return RedisSessionStore(settings.session_store_url, settings.session_absolute_seconds)
    return DatabaseSessionStore(db, clock)


class ServerSessionInterface(SessionInterface):
    """Flask's session interface over a :class:`SessionStore`, with the timeouts above."""

    def __init__(self, store: SessionStore, settings: IdentitySettings, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(COOKIE)
        if not sid or len(sid) > 128:
            return ServerSession()
        data = self.store.load(_hash(sid))
        if data is None:
            return ServerSession()
        session = ServerSession(data, sid)
        if self._expired(session):
            session.end()
        return session

    def _expired(self, session: ServerSession) -> bool:
        """Idle too long, or signed in too long ago."""
        now = self.clock()
        last_seen = session.at("last_seen_at") or now
        created = session.at("created_at") or now
        idle = self.settings.session_idle_seconds if session.user_id else ANONYMOUS_SECONDS
        if now - last_seen > timedelta(seconds=idle):
            return True
        if not session.user_id:
            return False
        lifetime = self.settings.session_absolute_seconds if session.stage == Stage.SIGNED_IN else PENDING_SECONDS
        return now - (session.at("signed_in_at") or created) > timedelta(seconds=lifetime)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return
        secure = request.is_secure
        if self._ending(session):
            self._forget(session, response, secure)
            return
        now = self.clock()
        if not session or not self._save_due(session, now):
            return  # nothing to keep (no cookie), or nothing new since the last touch
        if session.rotate and session.sid:
            self.store.delete(_hash(session.sid))
            session.sid = None
        session["last_seen_at"] = now.isoformat()
        session.setdefault("created_at", now.isoformat())
        session.sid = session.sid or secrets.token_urlsafe(32)
        self.store.save(_hash(session.sid), dict(session), self._ttl(session))
        response.set_cookie(COOKIE, session.sid, path="/", httponly=True, samesite="Lax", secure=secure)

    @staticmethod
    def _ending(session: ServerSession) -> bool:
        """Signed out, or emptied by the request: the stored session and the cookie go."""
        return session.ended or bool(session.sid and not session and session.modified)

    def _forget(self, session: ServerSession, response: Response, secure: bool) -> None:
        if session.sid:
            self.store.delete(_hash(session.sid))
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax", secure=secure)

    def _save_due(self, session: ServerSession, now: datetime) -> bool:
        return not session.sid or session.rotate or session.modified or self._touch_due(session, now)

    def _touch_due(self, session: ServerSession, now: datetime) -> bool:
        last_seen = session.at("last_seen_at")
        return last_seen is None or now - last_seen > timedelta(seconds=TOUCH_SECONDS)

    def _ttl(self, session: ServerSession) -> int:
        if not session.user_id:
            return ANONYMOUS_SECONDS
        return self.settings.session_idle_seconds + TOUCH_SECONDS
