"""``Idempotency-Key`` on POSTs that move money: a retried request gets the first outcome, never a second effect.

Put :func:`idempotent` above a view's flask-smorest decorators (it must run before the body
is parsed, so a replay answers without touching the services)::

    @idempotent
    @blp.arguments(SomeSchema)
    @blp.response(201, SomeResponseSchema)
    def post(self, data): ...

Keys are scoped to the authenticated user. The first request with a key claims it in the
gateway database and, in the same commit, binds the message id its command will carry (the
gateway makes the id; :mod:`services.gateway.bus` sends the command under it). The claim is
committed before the command is sent, so a concurrent duplicate sees it. Then, for the same
user and key:

- the same method, path and body, whose first attempt answered: its stored status and body,
  with ``Idempotent-Replayed``;
- the same request, whose first attempt's outcome is unknown (it answered 202, or failed after
  its command may have reached the broker): the reply stored for the bound message id if there
  is one, answered as the view answers it, else 202 with the status URL; also with
  ``Idempotent-Replayed``. The command is not sent a second time;
- anything else: 422 ``idempotency-key-reused`` (a client bug: a key names one request);
- while the first is still in flight: 409 ``idempotency-request-in-flight``; retry later.

A key is given back only when its command was provably never sent: the request failed before
the send (a malformed body, a refused permission, a database error), or the broker did not
answer the probe that precedes the send. A claim older than :data:`IN_FLIGHT_LEASE` without
an answer belongs to a gateway that died mid-request; the next request with that key runs again
under the message id the claim bound (a new one if it holds none), so a command the dead gateway
never sent is sent now, and one it did send is answered by the service's inbox with its first
result: one effect either way.

The gateway database sees two commits per keyed request: the claim, and the answer (a 202's
pending-command row, and the snapshots a reply carries, are written in the answer's commit). A
replay of a known answer commits nothing.

While the outcome is unknown (in flight, 202, or failed after sending) the record's
``location`` is the status URL of the bound command, which names its message id; once the
outcome is known it is the answer's ``Location``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Response, g, jsonify, make_response, request
from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.gateway import problems
from services.gateway.api import Blueprint, ctx
from services.gateway.api.commands import DEFERRED_ATTRIBUTE, Deferred, accepted, record_pending, status_path
from services.gateway.auth import current_actor
from services.gateway.bus import BINDING_ATTRIBUTE, Binding
from services.gateway.models import IdempotencyRecord
from services.gateway.readmodels import apply_reply_snapshots, commit_with_reply_snapshots
from shared.db.engine import Database
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Visible ASCII, as Stripe and the IETF draft allow; a UUID is the usual choice.
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
# Far above the time a request may take (the gateway waits seconds for a reply, then 202s).
IN_FLIGHT_LEASE = timedelta(seconds=60)
_BOUND_ID = re.compile(r"/commands/([0-9a-fA-F-]{36})$")

HEADER_DOC = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A unique key (a UUID) per request: a retry with the same key and body gets the first "
    "outcome and never repeats its effect; the same key with another body is refused 422; a duplicate while "
    "the first is in flight gets 409.",
}


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path (with query) and body, JSON compared by value."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body  # not JSON: compared byte for byte
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits hash alike
        digest.update(part)
    return digest.hexdigest()


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Make a POST view honour ``Idempotency-Key`` (see the module docstring)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not KEY_PATTERN.fullmatch(key):
            return problems.problem(
                400, "invalid-idempotency-key", f"{HEADER} must be 1 to 255 visible ASCII characters."
            )
        user_id = uuid.UUID(current_actor().user_id)
        path = request.full_path.rstrip("?")
        claim = Claim(ctx().db, user_id, key)
        taken = claim.take(request.method, path, fingerprint(request.method, path, request.get_data()))
        if isinstance(taken, Response):
            return taken
        binding = Binding(taken.message_id, replay=taken.replay)
        deferred = Deferred()
        setattr(g, BINDING_ATTRIBUTE, binding)  # Bus.send sends the command under this id
        setattr(g, DEFERRED_ATTRIBUTE, deferred)  # the views leave their writes for the answer's commit
        try:
            response = make_response(view(*args, **kwargs))
        except Exception:
            if not (binding.replay and not binding.used):
                claim.abandon(binding)
                raise
            # A replay whose view refused before reaching its command (the actor's roles changed,
            # say): that refusal is not what the first attempt did. Answer from the reply itself.
            response = _bound_outcome(binding)
        except BaseException:  # the worker is being stopped: leave the key as truthful as we can
            claim.abandon(binding)
            raise
        else:
            if binding.replay and not binding.used:
                response = _bound_outcome(binding)
        claim.finish(binding, taken, response, deferred)
        if binding.replay:
            response.headers[REPLAYED_HEADER] = "true"
        return response

    declared = getattr(view, "_apidoc", {}).get("response", {}).get("responses", {})
    # Document the 409 a duplicate in flight gets, unless the view declares its own 409 already.
    extra = {} if 409 in declared else {"responses": {"409": {"description": "A request with this key is in flight"}}}
    documented: Callable[..., Any] = Blueprint.doc(parameters=[HEADER_DOC], **extra)(wrapper)
    return documented


def _bound_outcome(binding: Binding) -> Response:
    """The bound command's reply as a plain answer (no view-specific headers), or 202."""
    reply = ctx().bus.reply(binding.message_id)
    if reply is None:
        return accepted(binding.message_id, current_actor(), "command")
    if reply["status"] >= 400:
        return problems.from_reply(reply)
    response = jsonify(reply["body"])
    response.status_code = reply["status"]
    return response


def bound_message_id(record: IdempotencyRecord) -> str | None:
    """The message id bound to a record whose outcome is unknown, if it holds one."""
    match = _BOUND_ID.search(record.location or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class Taken:
    """A request's right to answer for a key: with a fresh command, or replaying an earlier one."""

    message_id: str
    replay: bool = False
    answered_202: bool = False


class Claim:
    """One user's hold on one key, in the gateway database."""

    def __init__(self, db: Database, user_id: uuid.UUID, key: str) -> None:
        self.db = db
        self.user_id = user_id
        self.key = key

    def _this(self) -> Any:
        # The table's columns, not the entity's: a Core statement stays Core (no ORM bulk path).
        t = IdempotencyRecord.__table__
        return (t.c.user_id == self.user_id) & (t.c.key == self.key)

    def take(self, method: str, path: str, fingerprint: str) -> Taken | Response:
        """Claim the key for this request, or the answer a duplicate gets instead (replay, 409, 422)."""
        message_id = str(uuid.uuid4())
        # Two rounds at most: a claim released between our insert and our read is gone.
        for _ in range(2):
            now = utcnow()
            with self.db.uow() as uow:
                try:
                    uow.session.execute(
                        insert(IdempotencyRecord.__table__).values(
                            user_id=self.user_id,
                            key=self.key,
                            method=method,
                            path=path,
                            fingerprint=fingerprint,
                            location=status_path(message_id),  # binds the message id before it is sent
                            created_at=now,
                        )
                    )
                    uow.commit()
                    return Taken(message_id)
                except IntegrityError:
                    uow.rollback()
                record = uow.session.get(IdempotencyRecord, (self.user_id, self.key), with_for_update=True)
                if record is not None:
                    return self._existing(uow, record, fingerprint, message_id, now)
        return problems.problem(409, "idempotency-request-in-flight", f"The {HEADER} is busy; retry shortly.")

    def _existing(
        self, uow: UnitOfWork, record: IdempotencyRecord, fingerprint: str, message_id: str, now: datetime
    ) -> Taken | Response:
        """What a request gets when its key is claimed already (the record is locked)."""
        if record.fingerprint != fingerprint:
            return problems.problem(
                422,
                "idempotency-key-reused",
                f"This {HEADER} was used for a different request; use a new key for a new request.",
            )
        if record.status_code is not None and record.status_code != 202:
            return self._replay(record)
        bound = bound_message_id(record)
        if record.status_code is None and record.completed_at is None:
            if record.created_at > now - IN_FLIGHT_LEASE:
                response = problems.problem(
                    409,
                    "idempotency-request-in-flight",
                    f"A request with this {HEADER} is still being processed; retry shortly.",
                )
                response.headers["Retry-After"] = "1"
                return response
            # Abandoned by a gateway that died mid-request: run the request again, under the
            # message id the claim bound. The dead gateway may have died before sending it (then
            # only this can send it: a lookup would answer 202 for ever) or after (then the
            # service's inbox answers this second delivery with the first one's result).
            record.created_at = now
            record.location = status_path(bound or message_id)
            uow.commit()
            return Taken(bound or message_id)
        if bound is None:  # a 202 stored without its status URL: nothing to look up
            return self._replay(record)
        return Taken(bound, replay=True, answered_202=record.status_code == 202)

    @staticmethod
    def _replay(record: IdempotencyRecord) -> Response:
        response = Response(record.body or "", status=record.status_code, mimetype=record.content_type)
        if record.location:
            response.headers["Location"] = record.location
        response.headers[REPLAYED_HEADER] = "true"
        return response

    def finish(self, binding: Binding, taken: Taken, response: Response, deferred: Deferred) -> None:
        """Record what this request learnt, with the views' deferred writes (one commit at most)."""
        status = response.status_code
        if binding.replay:
            if status >= 500 or (status == 202 and taken.answered_202):
                apply_reply_snapshots(self.db.uow, deferred.snapshots)
                return  # nothing new: the outcome is as unknown as it was
            self._store(response, deferred, only_if_unknown=True)
        elif status < 500:
            self._store(response, deferred)  # 202 included: a retry then looks for the reply
        else:
            apply_reply_snapshots(self.db.uow, deferred.snapshots)
            if binding.sent:
                self._mark_unknown()
            else:
                self._release()

    def abandon(self, binding: Binding) -> None:
        """The view raised: give the key back if nothing was sent, else leave the outcome to be looked up."""
        if binding.replay:
            return
        if binding.sent:
            self._mark_unknown()
        else:
            self._release()

    def _store(self, response: Response, deferred: Deferred, only_if_unknown: bool = False) -> None:
        """Keep the answer, so a retry gets it without a second effect, with the snapshots its
        reply carries projected in the same commit (or, should those fail, without them)."""
        t = IdempotencyRecord.__table__
        statement = (
            update(t)
            .where(self._this())
            .values(
                status_code=response.status_code,
                content_type=response.mimetype,
                location=response.headers.get("Location"),
                body=response.get_data(as_text=True),
                completed_at=utcnow(),
            )
        )
        if only_if_unknown:  # never overwrite an answer a concurrent request stored
            statement = statement.where(or_(t.c.status_code.is_(None), t.c.status_code == 202))

        def write(session: Session) -> None:
            session.execute(statement)
            record_pending(session, deferred.pending)

        with self.db.uow() as uow:
            commit_with_reply_snapshots(uow, write, deferred.snapshots)

    def _mark_unknown(self) -> None:
        """The command may have been sent and its outcome is unknown: a retry looks for its reply."""
        with self.db.uow() as uow:
            uow.session.execute(
                update(IdempotencyRecord)
                .where(self._this(), IdempotencyRecord.status_code.is_(None))
                .values(completed_at=utcnow())
            )
            uow.commit()

    def _release(self) -> None:
        """Give the key back: the command was never sent, so a retry cannot repeat anything."""
        with self.db.uow() as uow:
            uow.session.execute(delete(IdempotencyRecord).where(self._this(), IdempotencyRecord.status_code.is_(None)))
            uow.commit()
