"""Bearer-token authentication: every API request names its actor."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask_smorest import abort

from services.gateway import identity


def current_actor() -> dict[str, Any]:
    """The authenticated actor of this request; 401 if there is none."""
    cached: dict[str, Any] | None = g.get("actor")
    if cached is not None:
        return cached
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        abort(401, message="A bearer token is required.")
    with current_app.extensions["pettycash"].db.uow() as uow:
        actor = identity.authenticate(uow.session, token.strip())
    if actor is None:
        abort(401, message="The bearer token is unknown or revoked.")
    g.actor = actor
    return actor
