"""The JSON API, one module per resource."""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import current_app
from marshmallow import ValidationError
from webargs.flaskparser import FlaskParser


def has_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL character anywhere (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


class _Parser(FlaskParser):
    # Schema errors are malformed input (400); 422 is kept for broken business rules.
    DEFAULT_VALIDATION_STATUS = 400

    def _load_location_data(self, *, schema: Any, req: Any, location: str) -> Any:
        # No text column (PostgreSQL's least of all) can keep a NUL: refuse it at the edge.
        data = super()._load_location_data(schema=schema, req=req, location=location)
        if has_nul(data if location != "query" else dict(data)):
            raise ValidationError({location: ["Text may not contain NUL characters."]})
        return data


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's blueprint with the API's validation status."""

    ARGUMENTS_PARSER = _Parser()


def ctx() -> Any:
    """The gateway context of the running app."""
    return current_app.extensions["pettycash"]
