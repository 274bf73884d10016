"""The JSON API, one module per resource.

Views return the Python body of a successful answer (or ``(body, status)`` /
``(body, status, headers)``) and flask-smorest dumps it with the schema of ``@blp.response``,
so the OpenAPI document is what the API returns. Other answers (202 accepted, problems) are
``Response`` objects, passed through as they are and documented with :meth:`Blueprint.problem`
and :meth:`Blueprint.accepted`.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import flask_smorest
from flask import current_app
from flask_smorest import abort
from flask_smorest.utils import prepare_response
from marshmallow import ValidationError, fields
from webargs.flaskparser import FlaskParser

from services.gateway.problems import PROBLEM_JSON
from services.gateway.schemas import COMPONENT_RULES, NUL_FREE, AcceptedSchema, ProblemSchema
from shared.contracts.permissions import permission


def has_nul(value: Any, *, in_keys: bool = True) -> bool:
    """Whether a decoded JSON value holds a NUL character anywhere (in its objects' keys too,
    unless not ``in_keys``)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any((in_keys and has_nul(k)) or has_nul(v, in_keys=in_keys) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v, in_keys=in_keys) for v in value)
    return False


class _Parser(FlaskParser):
    # Schema errors are malformed input (400); 422 is kept for broken business rules.
    DEFAULT_VALIDATION_STATUS = 400

    def _load_location_data(self, *, schema: Any, req: Any, location: str) -> Any:
        # No text column (PostgreSQL's least of all) can keep a NUL: refuse it at the edge.
        data = super()._load_location_data(schema=schema, req=req, location=location)
        loaded = data if location != "query" else dict(data)
        if has_nul(loaded, in_keys=False):  # a string the schema says is free of NULs: malformed
            raise ValidationError({location: ["Text may not contain NUL characters."]})
        if has_nul(loaded):
            # In an object's key, which the OpenAPI document cannot constrain (a denomination,
            # say): a rule broken, as an unknown key is.
            abort(422, messages={location: {location: ["A key may not contain NUL characters."]}})
        return data

    def _handle_invalid_json_error(self, error: Exception, req: Any, *args: Any, **kwargs: Any) -> Any:
        # As the NUL refusal: ``errors`` is always an object, the body as a whole under "json".
        abort(400, exc=error, messages={"json": {"json": ["Invalid JSON body."]}})


RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before trying again",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
LOCATION_HEADER = {"description": "Where the answer can be read", "required": True, "schema": {"type": "string"}}
WWW_AUTHENTICATE_HEADER = {
    "description": "The scheme to authenticate with",
    "required": True,
    "schema": {"type": "string"},
}

# Answers every operation of the API may give, whatever its own.
COMMON_PROBLEMS: dict[int, tuple[str, dict[str, Any] | None]] = {
    401: ("No bearer token, or one that is unknown or revoked", {"WWW-Authenticate": WWW_AUTHENTICATE_HEADER}),
    503: (
        "A service this request needs is unavailable, or the system is behind; retry after Retry-After",
        {"Retry-After": RETRY_AFTER_HEADER},
    ),
}


def _problem_doc(spec: Any, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A response object answering application/problem+json, ready for the spec."""
    response: dict[str, Any] = {"description": description, "schema": ProblemSchema}
    if headers:
        response["headers"] = headers
    prepare_response(response, spec, PROBLEM_JSON)
    return response


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's blueprint with the API's validation status and its problem answers."""

    ARGUMENTS_PARSER = _Parser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_problem_doc)

    def register_views_in_doc(self, api: Any, app: Any, spec: Any, *, name: str, parameters: Any) -> None:
        _prepare_spec(api, spec)
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)

    def problem(
        self, status: int, description: str, headers: dict[str, Any] | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Document an application/problem+json answer of this view."""
        return self.alt_response(  # type: ignore[no-any-return]
            status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description, headers=headers
        )

    def accepted(
        self, description: str = "Accepted; the outcome is not known yet (poll status_url)"
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Document the 202 a command answers when its reply is slow (a status URL to poll)."""
        return self.alt_response(  # type: ignore[no-any-return]
            202, schema=AcceptedSchema, description=description, headers={"Location": LOCATION_HEADER}, success=True
        )

    @staticmethod
    def _prepare_problem_doc(doc: dict[str, Any], doc_info: Any, *, spec: Any, **_: Any) -> dict[str, Any]:
        """Every error is a problem: name each status an operation may answer (no catch-all
        ``default``, so a status nobody documented is a finding), and describe as problems the
        400s flask-smorest documents for ``@blp.arguments``."""
        responses = doc.setdefault("responses", {})
        responses.pop("default", None)
        for status, answer in list(responses.items()):
            if isinstance(answer, str):  # a reference to flask-smorest's generic error response
                responses[status] = _problem_doc(
                    spec, "Malformed request: see errors" if int(status) == 400 else HTTPStatus(int(status)).phrase
                )
        access = doc_info.get("access")
        for status, (description, headers) in _problems_of(access).items():
            if status not in responses and str(status) not in responses:
                responses[status] = _problem_doc(spec, description, headers)
        if access is not None:
            _document_access(doc, access)
        if "requestBody" in doc and 413 not in responses:
            responses[413] = _problem_doc(spec, "The body is larger than the API takes (1 MiB)")
        # Answered by the HTTP server in front, before the API sees the request: not a problem.
        responses.setdefault(414, {"description": "The request line is longer than the HTTP server takes (4 KiB)"})
        _document_idempotency_key(doc_info.get("manual_doc", {}).get("parameters", []))
        return doc


def _problems_of(access: Any) -> dict[int, tuple[str, dict[str, Any] | None]]:
    """The problems an operation may answer whatever its own: 503 always; 401, 403 and 429
    wherever a credential is needed (a public operation answers its own, documented by it)."""
    answers = dict(COMMON_PROBLEMS)
    if access is not None and access.public:
        answers.pop(401)
        return answers
    answers[403] = (FORBIDDEN, None)
    answers[429] = ("Too many requests from this caller; retry after Retry-After", {"Retry-After": RETRY_AFTER_HEADER})
    return answers


FORBIDDEN = (
    "Not allowed: none of the caller's roles may take this action, a read-only token asked to change "
    "something, a token asked for what needs a session, or a session's CSRF token is missing or wrong"
)


def _document_access(doc: dict[str, Any], access: Any) -> None:
    """Who may call the operation: ``security`` (none for a public one) and ``x-permission``,
    the entry of the permission table it is checked against."""
    from services.gateway.sessions import Stage  # the access module imports this one

    if access.public:
        doc["security"] = []
        return
    if access.sessions_only:
        doc["security"] = [{"sessionCookie": []}]
    rule = permission(access.action)
    doc["x-permission"] = {
        "action": str(access.action),
        "roles": sorted(rule.roles),
        "scope": str(rule.scope),
        "stages": sorted(access.stages),
        "sessions_only": access.sessions_only,
    }
    if set(access.stages) != {Stage.SIGNED_IN}:
        doc["x-permission"]["note"] = "Also served to a session part-way through sign-in."


def _nul_free_text(self: Any, field: fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
    """An apispec attribute function: a string not otherwise constrained says it holds no NUL;
    a nullable object is the object or ``null``, not any object at all (apispec's ``anyOf``
    branch for ``null`` is ``{"type": "object", "nullable": true}``, which ``{}`` matches)."""
    if isinstance(field, fields.Nested) and field.allow_none:
        for branch in ret.get("anyOf", []):
            if branch.get("nullable") and "$ref" not in branch:
                branch["enum"] = [None]
    if isinstance(field, fields.String) and not {"pattern", "enum"} & set(ret):
        return {"pattern": NUL_FREE}
    return {}


def _document_idempotency_key(parameters: list[Any]) -> None:
    """The ``Idempotency-Key`` header documented with the pattern the gateway checks it against
    (a key outside it is refused 400), not only its length."""
    from services.gateway.idempotency import HEADER, KEY_PATTERN  # it imports this module

    for parameter in parameters:
        if isinstance(parameter, dict) and parameter.get("in") == "header" and parameter.get("name") == HEADER:
            parameter["schema"] = {**parameter["schema"], "pattern": f"^{KEY_PATTERN.pattern}$"}


def _prepare_spec(api: Any, spec: Any) -> None:
    """Once per API, before any schema is converted: strings are NUL-free, and the rules across
    fields (``schemas.COMPONENT_RULES``) are part of their schemas' components."""
    converter = api.ma_plugin.converter
    if _nul_free_text.__name__ not in vars(converter):
        converter.add_attribute_function(_nul_free_text)
    from services.gateway.identity_schemas import IDENTITY_COMPONENT_RULES  # it imports schemas

    for schema, rule in {**COMPONENT_RULES, **IDENTITY_COMPONENT_RULES}.items():
        component = api.ma_plugin.schema_name_resolver(schema)
        if component not in spec.components.schemas:
            spec.components.schema(component, dict(rule), schema=schema)


def ctx() -> Any:
    """The gateway context of the running app."""
    return current_app.extensions["pettycash"]
