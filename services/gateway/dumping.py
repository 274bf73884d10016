"""Response schemas that dump JSON-shaped bodies quickly, with marshmallow's own result.

A read answers with a body the services built and the projections kept as JSON: dicts of
strings, numbers, booleans, lists and dicts. marshmallow dumps each field through five calls
(``serialize``, ``get_value`` and its helpers, ``_serialize``), which made dumping a quarter of
the gateway's CPU on the dashboard's reads. :class:`ApiSchema` dumps a plain ``dict`` by a plan
made once per schema instance: a field that copies its value (``String`` of a ``str``,
``Integer`` of an ``int``, ``Boolean`` of a ``bool``, ``Raw``) is one lookup; a nested schema
without hooks is dumped by the same plan, whatever its class, and a report's rows (objects keyed
by text) are copied; anything else (another type of
value, a missing key, a field of any other kind or with an ``attribute`` or a default, an object
that is not a plain dict) goes through marshmallow as before. The result is what marshmallow
returns; ``tests/unit/test_dumping.py`` compares the two over every response schema.
"""

from __future__ import annotations

from collections.abc import Callable
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

# A step of a plan: the attribute, the key it is written under, how a value found under the
# attribute is converted (None: marshmallow's field dumps it), the field.
Convert = Callable[[Any, dict[str, Any]], Any]
_Step = tuple[str, str, Convert | None, fields.Field]


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
    result: dict[str, Any] = {}
    for attr, key, convert, field in _plan_of(schema):
        value = obj.get(attr, missing)
        if value is missing or convert is None:
            value = field.serialize(attr, obj, accessor=schema.get_attribute)
            if value is missing:
                continue
        else:
            value = convert(value, obj)
        result[key] = value
    return result


def _plan_of(schema: Schema) -> list[_Step]:
    plan: list[_Step] | None = schema.__dict__.get(_PLAN)
    if plan is None:
        plan = [
            (name, field.data_key if field.data_key is not None else name, _converter(name, field), field)
            for name, field in schema.dump_fields.items()
        ]
        schema.__dict__[_PLAN] = plan
    return plan


def _converter(name: str, field: fields.Field) -> Convert | None:
    """How the plan dumps a field's value (None: by the field, as marshmallow does)."""
    if field.attribute is not None or field.dump_default is not missing:
        return None
    make = _CONVERTERS.get(type(field))
    return None if make is None else make(name, field)


def _same(value: Any, _obj: dict[str, Any]) -> Any:
    return value


def _raw(_name: str, _field: fields.Field) -> Convert | None:
    return _same


def _copied(name: str, field: fields.Field) -> Convert | None:
    if getattr(field, "as_string", False):
        return None
    types = _COPIED[type(field)]

    def convert(value: Any, obj: dict[str, Any]) -> Any:
        return value if value is None or type(value) in types else field._serialize(value, name, obj)

    return convert


def _nested(_name: str, field: fields.Field) -> Convert | None:
    if not isinstance(field, fields.Nested) or not _plain(field):
        return None
    nested = field.schema

    def convert(value: Any, _obj: dict[str, Any]) -> Any:
        return None if value is None else dump_plain(nested, value)

    return convert


def _row(name: str, field: fields.Field) -> Convert | None:
    """An object keyed by text (a report's row), copied when its keys are text."""
    if not isinstance(field, fields.Dict) or type(field.key_field) is not fields.String or field.value_field:
        return None

    def convert(value: Any, obj: dict[str, Any]) -> Any:
        if type(value) is dict and all(type(key) is str for key in value):
            return dict(value)
        return field._serialize(value, name, obj)

    return convert


def _list(name: str, field: fields.Field) -> Convert | None:
    """A list of nested objects or of rows: each item as the plan dumps the list's inner field."""
    inner = field.inner if isinstance(field, fields.List) else None
    make = {fields.Nested: _nested, fields.Dict: _row}.get(type(inner))
    each = None if make is None or inner is None else make(name, inner)
    if each is None:
        return None

    def convert(value: Any, obj: dict[str, Any]) -> Any:
        if type(value) is list:
            return [each(item, obj) for item in value]
        return field._serialize(value, name, obj)

    return convert


_CONVERTERS: dict[type[fields.Field], Callable[[str, fields.Field], Convert | None]] = {
    fields.Raw: _raw,
    fields.String: _copied,
    fields.Integer: _copied,
    fields.Boolean: _copied,
    fields.Nested: _nested,
    fields.List: _list,
}


def _plain(field: fields.Nested) -> bool:
    """A nested field the plan may dump itself: one object (or one list of them) of a schema
    without hooks, whose dump is then its ``_serialize``."""
    if field.many or field.dump_default is not missing or field.attribute is not None:
        return False
    nested = field.schema
    return not (nested.many or nested._hooks[PRE_DUMP] or nested._hooks[POST_DUMP])
