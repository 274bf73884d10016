"""``Idempotency-Key`` on POSTs that move money: a retried request gets the first answer, never a second effect.

Put :func:`idempotent` above a view's flask-smorest decorators (it must run before the body
is parsed, so a replay answers without touching the services)::

    @idempotent
    @blp.arguments(SomeSchema)
    @blp.response(201, SomeResponseSchema)
    def post(self, data): ...

Keys are scoped to the authenticated user. The first request with a key claims it in the
gateway database (committed at once, so a concurrent duplicate sees the claim) and stores
its answer when done. Then, for the same user and key:

- the same method, path and body: the stored status and body, with ``Idempotent-Replayed``;
- anything else: 422 ``idempotency-key-reused`` (a client bug: a key names one request);
- while the first is still in flight: 409 ``idempotency-request-in-flight``; retry later.

Server errors (5xx) and errors raised before the view answered (a malformed body) release
the key: nothing happened that a retry could duplicate, so the client may retry with it.
A claim older than :data:`IN_FLIGHT_LEASE` without an answer belongs to a gateway that died
mid-request; the next request with that key takes it over.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Response, make_response, request
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from services.gateway import problems
from services.gateway.api import Blueprint, ctx
from services.gateway.auth import current_actor
from services.gateway.models import IdempotencyRecord
from shared.db.engine import Database
from shared.db.types import utcnow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Visible ASCII, as Stripe and the IETF draft allow; a UUID is the usual choice.
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
# Far above the time a request may take (the gateway waits seconds for a reply, then 202s).
IN_FLIGHT_LEASE = timedelta(seconds=60)

HEADER_DOC = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A unique key (a UUID) per request: a retry with the same key and body gets the first "
    "answer; the same key with another body is refused 422; a duplicate while the first is in flight gets 409.",
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
        user_id = uuid.UUID(current_actor()["user_id"])
        path = request.full_path.rstrip("?")
        claim = Claim(ctx().db, user_id, key)
        refusal = claim.take(request.method, path, fingerprint(request.method, path, request.get_data()))
        if refusal is not None:
            return refusal
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            claim.release()
            raise
        if response.status_code >= 500:
            claim.release()
        else:
            claim.store(response)
        return response

    declared = getattr(view, "_apidoc", {}).get("response", {}).get("responses", {})
    # Document the 409 a duplicate in flight gets, unless the view declares its own 409 already.
    extra = {} if 409 in declared else {"responses": {"409": {"description": "A request with this key is in flight"}}}
    documented: Callable[..., Any] = Blueprint.doc(parameters=[HEADER_DOC], **extra)(wrapper)
    return documented


class Claim:
    """One user's hold on one key, in the gateway database."""

    def __init__(self, db: Database, user_id: uuid.UUID, key: str) -> None:
        self.db = db
        self.user_id = user_id
        self.key = key

    def take(self, method: str, path: str, fingerprint: str) -> Response | None:
        """Claim the key for this request, or the answer a duplicate gets instead (replay, 409, 422)."""
        # Two rounds at most: a claim released between our insert and our read is gone.
        for _ in range(2):
            now = utcnow()
            with self.db.uow() as uow:
                try:
                    uow.session.add(
                        IdempotencyRecord(
                            user_id=self.user_id,
                            key=self.key,
                            method=method,
                            path=path,
                            fingerprint=fingerprint,
                            created_at=now,
                        )
                    )
                    uow.commit()
                    return None
                except IntegrityError:
                    uow.rollback()
                record = uow.session.get(IdempotencyRecord, (self.user_id, self.key), with_for_update=True)
                if record is None:
                    continue
                if record.fingerprint != fingerprint:
                    return problems.problem(
                        422,
                        "idempotency-key-reused",
                        f"This {HEADER} was used for a different request; use a new key for a new request.",
                    )
                if record.status_code is None:
                    if record.created_at > now - IN_FLIGHT_LEASE:
                        response = problems.problem(
                            409,
                            "idempotency-request-in-flight",
                            f"A request with this {HEADER} is still being processed; retry shortly.",
                        )
                        response.headers["Retry-After"] = "1"
                        return response
                    record.created_at = now  # abandoned by a gateway that died: take it over
                    uow.commit()
                    return None
                return self._replay(record)
        return problems.problem(409, "idempotency-request-in-flight", f"The {HEADER} is busy; retry shortly.")

    @staticmethod
    def _replay(record: IdempotencyRecord) -> Response:
        response = Response(record.body or "", status=record.status_code, mimetype=record.content_type)
        if record.location:
            response.headers["Location"] = record.location
        response.headers[REPLAYED_HEADER] = "true"
        return response

    def store(self, response: Response) -> None:
        """Keep the answer, so a retry gets it without a second effect."""
        with self.db.uow() as uow:
            uow.session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.user_id == self.user_id, IdempotencyRecord.key == self.key)
                .values(
                    status_code=response.status_code,
                    content_type=response.mimetype,
                    location=response.headers.get("Location"),
                    body=response.get_data(as_text=True),
                    completed_at=utcnow(),
                )
            )
            uow.commit()

    def release(self) -> None:
        """Give the key back: the request had no effect a retry could repeat."""
        with self.db.uow() as uow:
            uow.session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.user_id == self.user_id,
                    IdempotencyRecord.key == self.key,
                    IdempotencyRecord.status_code.is_(None),
                )
            )
            uow.commit()
