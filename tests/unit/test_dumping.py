"""The response schemas' quick dump returns what marshmallow's own dump returns, for every
schema of the gateway, over bodies of every shape: values of the declared type, of another
type, null, missing, nested objects and lists (with nulls in them), and objects that are not
plain dicts."""

from __future__ import annotations

import random
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from marshmallow import Schema, fields

from services.gateway import identity_schemas, report_schemas, run_schemas, schemas
from services.gateway.dumping import ApiSchema

MODULES: tuple[ModuleType, ...] = (schemas, run_schemas, report_schemas, identity_schemas)
SCHEMAS = sorted(
    {
        value
        for module in MODULES
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ApiSchema) and value is not ApiSchema
    },
    key=lambda cls: cls.__name__,
)
SAMPLES = 40


def _other(rng: random.Random) -> Any:
    return rng.choice([0, 7, -3, 2**70, True, False, "", "text", "12", 1.5, [], {}, [1, "a"], {"k": "v"}])


def _value(field: fields.Field, rng: random.Random, depth: int) -> Any:
    """A value for a field: mostly of its type, sometimes null or of another."""
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.2:
        return _other(rng)
    if isinstance(field, fields.Nested):
        return _body(field.schema, rng, depth + 1) if depth < 4 else None
    if isinstance(field, fields.List):
        return [None if rng.random() < 0.1 else _value(field.inner, rng, depth) for _ in range(rng.randint(0, 3))]
    if isinstance(field, fields.Boolean):
        return rng.choice([True, False])
    if isinstance(field, fields.Integer):
        return rng.choice([0, 1, 1234567, -5, 2**63])
    if isinstance(field, fields.String):
        return rng.choice(["", "a", "KES", "2026-12-04T19:00:00+00:00", "Ñandú 日本"])
    if isinstance(field, fields.Dict):
        return rng.choice([{"a": 1, "b": "two", "c": {"minor_units": 5, "currency": "KES"}}, {1: "a key not text"}, {}])
    return _other(rng)


def _body(schema: Schema, rng: random.Random, depth: int = 0) -> Any:
    body = {
        field.data_key or name: _value(field, rng, depth)
        for name, field in schema.dump_fields.items()
        if rng.random() > 0.1  # now and then a key is missing
    }
    body["undeclared"] = "dropped"
    if rng.random() < 0.05:
        return SimpleNamespace(**body)  # not a plain dict: marshmallow's way
    return body


def _outcome(schema: Schema, body: Any) -> Any:
    try:
        return ("dumped", schema.dump(body))
    except Exception as exc:  # the same failure is the same outcome
        return ("raised", type(exc).__name__)


@pytest.mark.parametrize("schema_class", SCHEMAS, ids=lambda cls: cls.__name__)
def test_the_quick_dump_is_marshmallow_s(schema_class: type[ApiSchema], monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(schema_class.__name__)
    schema = schema_class()
    bodies = [_body(schema, rng) for _ in range(SAMPLES)]
    quick = [_outcome(schema, body) for body in bodies]
    monkeypatch.setattr(ApiSchema, "_serialize", Schema._serialize)
    reference = [_outcome(schema_class(), body) for body in bodies]
    assert quick == reference


def test_every_response_schema_is_dumped_quickly() -> None:
    assert len(SCHEMAS) > 80
    plain = {"id": "r1", "state": "started", "items": [{"requisition_id": "x", "included": True}]}
    assert run_schemas.RunSchema().dump(plain)["items"][0]["included"] is True
