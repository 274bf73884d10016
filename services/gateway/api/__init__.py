"""The JSON API, one module per resource."""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import current_app
from webargs.flaskparser import FlaskParser


class _Parser(FlaskParser):
    # Schema errors are malformed input (400); 422 is kept for broken business rules.
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's blueprint with the API's validation status."""

    ARGUMENTS_PARSER = _Parser()


def ctx() -> Any:
    """The gateway context of the running app."""
    return current_app.extensions["pettycash"]
