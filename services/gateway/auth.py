"""Bearer-token authentication: every API request names its actor."""

from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy.orm import Session

from services.gateway import identity
from shared.contracts.envelope import Actor


def current_actor() -> Actor:
    """The authenticated actor of this request; 401 if there is none."""
    cached: Actor | None = g.get("actor")
    if cached is not None:
        return cached
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        abort(401, message="A bearer token is required.")
    db = current_app.extensions["pettycash"].db
    with db.engine.connect() as connection:
        if db.is_postgres:
            # One SELECT needs no transaction around it (it reads one snapshot by itself), so
            # skip the BEGIN and ROLLBACK round trips every request would otherwise pay.
            connection.execution_options(isolation_level="AUTOCOMMIT")
        with Session(bind=connection) as session:
            actor = identity.authenticate(session, token.strip())
    if actor is None:
        abort(401, message="The bearer token is unknown or revoked.")
    g.actor = actor
    return actor
