"""How pages write money, times and deadlines (Babel), in the reader's time zone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from babel import Locale
from babel.numbers import format_currency
from flask import Flask

from services.gateway.web import formatting
from services.gateway.web.formatting import BadAmount, due, minor_units, money, when
from shared.contracts.money import CURRENCY_EXPONENTS

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_money_is_written_in_the_currency_s_own_format() -> None:
    assert money({"minor_units": 125_050, "currency": "KES"}) == "Ksh1,250.50"  # CLDR: en_KE
    assert "1,250" in money({"minor_units": 1_250, "currency": "UGX"})  # no minor unit


# Halves (half-even rounding where CLDR shows fewer places than the exponent: IQD, AFN),
# signs, zero, one minor unit, and a trillion.
EDGES = [0, 1, -1, 4, 5, 6, -5, 15, 25, -25, 49, 50, 51, 99, 100, 101, -100, 499, 500, 501, -500, 1500, 2500]
EDGES += [10**15, -(10**15)]


@pytest.mark.parametrize("currency", sorted(CURRENCY_EXPONENTS))
def test_money_is_written_exactly_as_babel_writes_it(currency: str) -> None:
    exponent = CURRENCY_EXPONENTS[currency]
    rng = random.Random(currency)
    large = [rng.randint(-(10**12), 10**12) for _ in range(200)]
    amounts = EDGES + large + [rng.randint(-3000, 3000) for _ in range(200)]
    for minor in amounts:
        babel = format_currency(Decimal(minor).scaleb(-exponent), currency, locale=formatting._LOCALE)
        assert money({"minor_units": minor, "currency": currency}) == babel, minor


def test_a_locale_that_writes_numbers_otherwise_is_left_to_babel(monkeypatch: pytest.MonkeyPatch) -> None:
    german = Locale.parse("de_DE")  # 1.234.567,89 €
    monkeypatch.setattr(formatting, "_LOCALE", german)
    formatting._written_like_babel.cache_clear()
    try:
        assert formatting._written_like_babel("EUR") is None
        for minor in EDGES:
            babel = format_currency(Decimal(minor).scaleb(-2), "EUR", locale=german)
            assert money({"minor_units": minor, "currency": "EUR"}) == babel
    finally:
        formatting._written_like_babel.cache_clear()


def test_typed_amounts_become_minor_units_or_are_refused_in_words() -> None:
    assert minor_units("1,250.50", "KES") == 125_050
    with pytest.raises(BadAmount, match="at most 2 decimals"):
        minor_units("12.345", "KES")
    for hostile in ("<script>", "sNaN", "NaN", "-Infinity", "1e999999999", "9" * 40):
        with pytest.raises(BadAmount):
            minor_units(hostile, "KES")


@pytest.mark.parametrize(
    ("offset", "words"),
    [(timedelta(hours=5), "due in 5h"), (timedelta(minutes=-150), "overdue by 2h"), (timedelta(days=3), "due in 3d")],
)
def test_a_deadline_is_said_against_now(offset: timedelta, words: str) -> None:
    assert due((NOW + offset).isoformat(), now=NOW) == words
    assert due(None) == "no deadline"


def test_times_are_in_the_browser_s_time_zone_else_the_organisation_s() -> None:
    app = Flask(__name__)
    instant = NOW.isoformat()
    with app.test_request_context(headers={"Cookie": "tz=Europe/London"}):
        assert when(instant) == "3 Dec 2026, 09:00"
    with app.test_request_context(headers={"Cookie": "tz=Asia/Kolkata"}):
        assert when(instant) == "3 Dec 2026, 14:30"
    for cookie in ("tz=Not/AZone", "tz=../../etc/passwd", "tz=" + "x" * 100, ""):
        with app.test_request_context(headers={"Cookie": cookie} if cookie else {}):
            assert when(instant) == "3 Dec 2026, 12:00"  # Africa/Nairobi
    assert when(instant) == "3 Dec 2026, 12:00"  # outside a request
