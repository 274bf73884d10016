"""JSON encoded and decoded by orjson, where the size of what travels makes it count: a report's
rows on their way from a service to the gateway (Celery's results) and from the gateway to the
client, a dashboard's or a list's body, and the JSON columns every database writes and reads
(a run's hundred items in its outbox message, its inbox's stored reply, its read model).

A report of sixty floats over thirty days is 675 KB of JSON: the standard library takes some
8 ms to write it and 6 ms to read it back, on each side of each hop; orjson a fifth of that.
The text is the same JSON. What orjson would write differently from before is left to the
encoder it replaces: datetimes (which Celery's JSON marks as such, so they come back as
datetimes), strings that are not valid UTF-8 (lone surrogates), integers beyond 64 bits, and
any type it does not know. A UUID is written as its text (Celery's JSON marked it too); no
reply holds one, as every command's reply is also stored as plain JSON in its inbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from kombu.serialization import register
from kombu.utils import json as kombu_json

# Celery's name for the serializer below (``task_serializer``, ``result_serializer``).
SERIALIZER = "orjson"
CONTENT_TYPE = "application/x-orjson"
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


class _Unsupported(TypeError):
    """orjson met what only the encoder it stands in for writes the way callers expect."""


def _refuse(_obj: Any) -> Any:
    raise _Unsupported


def dumps(obj: Any, fallback: Callable[[Any], str | bytes], default: Callable[[Any], Any] = _refuse) -> bytes:
    """``obj`` as JSON by orjson, or by ``fallback`` for what orjson leaves to it (see above).

    ``default`` turns an object orjson does not know into one it does (raising hands the
    whole value to ``fallback``)."""
    try:
        return orjson.dumps(obj, default=default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        written = fallback(obj)
        return written.encode() if isinstance(written, str) else written


def column_dumps(obj: Any) -> str:
    """A JSON column's value as its text (the engines' ``json_serializer``): an outbox message,
    an inbox's stored reply, a read model's body. What orjson leaves alone fails as before."""
    return dumps(obj, json.dumps).decode()


# Twenty digits in a row: perhaps an integer beyond 64 bits, which orjson would read as a float.
# Found by mapping every byte to a digit-or-not mark and looking for twenty digit marks: a tenth
# of a regular expression's time, which took longer than orjson's reading itself. (In UTF-8 the
# bytes of the ten digits stand for nothing else.)
_DIGIT_MARKS = bytes(1 if ord("0") <= byte <= ord("9") else 0 for byte in range(256))
_LONG_NUMBER = bytes(20 * [1])


def column_loads(text: str | bytes) -> Any:
    """A JSON column's text read back (the engines' ``json_deserializer``); one that may hold an
    integer beyond 64 bits by the standard library, which reads it exactly."""
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_NUMBER in raw.translate(_DIGIT_MARKS):
        return json.loads(raw)
    return orjson.loads(raw)


def _kombu_dumps(obj: Any) -> bytes:
    return dumps(obj, kombu_json.dumps)


# What Celery's JSON writes for the types it marks (a datetime, a UUID, a Decimal); only such a
# message needs its reader, which turns them back into those types.
_MARKER = b'"__type__"'


def _kombu_loads(data: bytes | str) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    if _MARKER in raw:
        return kombu_json.loads(raw)
    return orjson.loads(raw)


def register_with_kombu() -> None:
    """Make :data:`SERIALIZER` known to Celery (idempotent)."""
    register(SERIALIZER, _kombu_dumps, _kombu_loads, content_type=CONTENT_TYPE, content_encoding="binary")
