"""Response schemas that dump JSON-shaped bodies quickly, with marshmallow's own result.

A read answers with a body the services built and the projections kept as JSON: dicts of
strings, numbers, booleans, lists and dicts. marshmallow dumps each field through five calls
(``serialize``, ``get_value`` and its helpers, ``_serialize``), which made dumping a quarter of
the gateway's CPU on the dashboard's reads. :class:`ApiSchema` dumps a plain ``dict`` by a plan
made once per schema instance: a field that copies its value (``String`` of a ``str``,
``Integer`` of an ``int``, ``Boolean`` of a ``bool``, ``Raw``) is one lookup; a nested schema
without hooks is dumped by the same plan, whatever its class; anything else (another type of
value, a missing key, a field of any other kind or with an ``attribute`` or a default, an object
that is not a plain dict) goes through marshmallow as before. The result is what marshmallow
returns; ``tests/unit/test_dumping.py`` compares the two over every response schema.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP

# The field classes whose dump of a value of these exact types is the value itself.
_COPIED: dict[type[fields.Field], tuple[type, ...]] = {
    fields.String: (str,),
    fields.Integer: (int,),
    fields.Boolean: (bool,),
}
_PLAN = "_fast_dump_plan"

# A step of a plan: (kind, attribute, key, field, nested schema).
_Step = tuple[int, str, str, Any, Any]
_COPY, _RAW, _NESTED, _NESTED_LIST, _FIELD = range(5)


class ApiSchema(Schema):
    """A schema whose dump of a plain dict follows a precomputed plan (see the module)."""

    def _serialize(self, obj: Any, *, many: bool = False) -> Any:
        if many and obj is not None:
            return [dump_plain(self, item) for item in obj]
        return dump_plain(self, obj)


def dump_plain(schema: Schema, obj: Any) -> Any:
    """``schema``'s dump of one object, without its hooks (as ``Schema._serialize``)."""
    if type(obj) is not dict:
        return Schema._serialize(schema, obj)
    plan: list[_Step] | None = schema.__dict__.get(_PLAN)
    if plan is None:
        plan = _plan(schema)
        schema.__dict__[_PLAN] = plan
    result: dict[str, Any] = {}
    for kind, attr, key, field, nested in plan:
        value = obj.get(attr, missing)
        if value is missing or kind == _FIELD:
            value = field.serialize(attr, obj, accessor=schema.get_attribute)
            if value is missing:
                continue
        elif kind == _COPY:
            if value is not None and type(value) not in _COPIED[type(field)]:
                value = field._serialize(value, attr, obj)
        elif kind == _NESTED:
            if value is not None:
                value = dump_plain(nested, value)
        elif kind == _NESTED_LIST:
            if type(value) is list:
                value = [None if item is None else dump_plain(nested, item) for item in value]
            elif value is not None:
                value = field.serialize(attr, obj, accessor=schema.get_attribute)
        result[key] = value
    return result


def _plan(schema: Schema) -> list[_Step]:
    steps: list[_Step] = []
    for name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else name
        if field.attribute is not None or field.dump_default is not missing:
            steps.append((_FIELD, name, key, field, None))
        elif type(field) in _COPIED and not getattr(field, "as_string", False):
            steps.append((_COPY, name, key, field, None))
        elif type(field) is fields.Raw:
            steps.append((_RAW, name, key, field, None))
        elif type(field) is fields.Nested and _plain(field):
            steps.append((_NESTED, name, key, field, field.schema))
        elif type(field) is fields.List and type(field.inner) is fields.Nested and _plain(field.inner):
            steps.append((_NESTED_LIST, name, key, field, field.inner.schema))
        else:
            steps.append((_FIELD, name, key, field, None))
    return steps


def _plain(field: fields.Nested) -> bool:
    """A nested field the plan may dump itself: one object (or one list of them) of a schema
    without hooks, whose dump is then its ``_serialize``."""
    if field.many or field.dump_default is not missing or field.attribute is not None:
        return False
    nested = field.schema
    return not (nested.many or nested._hooks[PRE_DUMP] or nested._hooks[POST_DUMP])
