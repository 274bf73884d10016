"""JSON columns read back by orjson, and exactly where orjson would not read them so."""

from __future__ import annotations

import json

import pytest

from shared.fastjson import column_dumps, column_loads


@pytest.mark.parametrize(
    "value",
    [
        {"amount": {"minor_units": 2**63 - 1, "currency": "KES"}},
        {"amount": {"minor_units": 2**64 + 1, "currency": "KES"}},  # beyond 64 bits: not a float
        {"amount": {"minor_units": -(10**30)}},
        [10**19, 10**20, 12345678901234567890123],
        {"payee": "Ñandú Ltd, 12345678901234567890 Road", "note": "ok 日本"},
        {"id": "0a1b2c3d-0000-4000-8000-000000000000", "at": "2026-12-04T19:00:00.123456+00:00"},
    ],
)
def test_a_column_reads_back_what_was_written(value: object) -> None:
    text = column_dumps(value)
    assert json.loads(text) == value
    assert column_loads(text) == value
    assert column_loads(text.encode()) == value


def test_a_big_integer_is_read_as_an_integer() -> None:
    loaded = column_loads('{"n": 123456789012345678901234567890}')
    assert loaded == {"n": 123456789012345678901234567890}
    assert isinstance(loaded["n"], int)
