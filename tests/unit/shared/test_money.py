from __future__ import annotations

import pytest
from marshmallow import ValidationError

from shared.contracts.money import Money, MoneySchema


def test_money_is_integer_minor_units_only() -> None:
    with pytest.raises(TypeError):
        Money("KES", 12.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money("KES", True)
    with pytest.raises(ValueError, match="unknown currency"):
        Money("XYZ", 100)


def test_money_arithmetic_refuses_mixed_currencies() -> None:
    assert Money("KES", 150) + Money("KES", 50) == Money("KES", 200)
    assert Money("KES", 150) - Money("KES", 200) == Money("KES", -50)
    with pytest.raises(ValueError, match="cannot mix"):
        Money("KES", 1) + Money("USD", 1)


@pytest.mark.parametrize(
    ("money", "text"),
    [(Money("KES", 125000), "1,250.00 KES"), (Money("JPY", 5000), "5,000 JPY"), (Money("BHD", -1005), "-1.005 BHD")],
)
def test_money_prints_in_major_units_by_currency_exponent(money: Money, text: str) -> None:
    assert str(money) == text


def test_schema_round_trip() -> None:
    loaded = MoneySchema().load({"minor_units": 125000, "currency": "KES"})
    assert loaded == Money("KES", 125000)
    assert MoneySchema().dump(loaded) == {"minor_units": 125000, "currency": "KES"}


@pytest.mark.parametrize(
    "raw",
    [
        {"minor_units": 1.0, "currency": "KES"},
        {"minor_units": "100", "currency": "KES"},
        {"minor_units": False, "currency": "KES"},
        {"minor_units": 0, "currency": "KES"},
        {"minor_units": -1, "currency": "KES"},
        {"minor_units": 10**14, "currency": "KES"},
        {"minor_units": 100, "currency": "kes"},
        {"minor_units": 100},
        {"minor_units": 100, "currency": "KES", "extra": 1},
    ],
)
def test_schema_refuses_anything_but_a_positive_integer_and_a_known_code(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MoneySchema().load(raw)
