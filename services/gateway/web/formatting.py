"""How pages show money, times and states: the currency's own format (Babel), times in the
organisation's time zone, states in words."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_currency
from flask import has_request_context, request

from shared.contracts.money import CURRENCY_EXPONENTS

LOCALE = "en_KE"
# Parsed once: naming the locale by its string makes Babel parse it again for every amount,
# half of what formatting one costs (a PDF of a report formats thousands).
_LOCALE = Locale.parse(LOCALE)
# The organisation's time zone: times are shown in it until the browser has said its own
# (static/app.js sets the ``tz`` cookie to the browser's IANA zone; see ``time_zone``).
TIME_ZONE = ZoneInfo("Africa/Nairobi")
TZ_COOKIE = "tz"

STATUS_WORDS = {
    "draft": "Draft",
    "submitted": "Submitted",
    "pending_approval": "Waiting for approval",
    "pending_urgency_confirmation": "Urgent: waiting for confirmation",
    "changes_requested": "Changes requested",
    "approved": "Approved",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
    "expired": "Expired",
    "awaiting_funds": "Approved, waiting for funds",
    "reserved": "Approved, ready to pay",
    "payment_processing": "Being paid",
    "paid": "Paid",
    "payment_failed": "Payment failed",
}


def money(amount: dict[str, Any] | None) -> str:
    """``{"minor_units": 125000, "currency": "KES"}`` as ``Ksh1,250.00``: Babel's
    ``format_currency`` in the organisation's locale, written by :func:`_written_like_babel`
    (a report's PDF writes thousands of amounts; Babel takes 12.5 µs for each, this 1.6)."""
    if not amount:
        return ""
    currency = amount["currency"]
    major = Decimal(int(amount["minor_units"])).scaleb(-CURRENCY_EXPONENTS[currency])
    form = _written_like_babel(currency)
    if form is None:
        return str(format_currency(major, currency, locale=_LOCALE))
    places, quantum, positive, negative = form
    shown = major.quantize(quantum, rounding=ROUND_HALF_EVEN)
    before, after = negative if shown.is_signed() else positive
    return f"{before}{abs(shown):,.{places}f}{after}"


# The number Babel is asked to write, to see how it writes a currency around it.
_PROBE = Decimal(1234567)
MAX_SHOWN_PLACES = 4  # CLDR's most (CLF, UYW)


@functools.cache
def _written_like_babel(currency: str) -> tuple[int, Decimal, tuple[str, str], tuple[str, str]] | None:
    """How Babel writes ``currency`` in ``_LOCALE``: the decimal places it shows (CLDR's, not
    always the currency's exponent), their quantum, and what it writes before and after a
    positive and a negative number; None where the locale writes numbers other than
    ``1,234,567.89`` (Babel then writes each amount itself). ``tests/unit/test_page_formatting.py``
    holds the two equal."""
    positive = str(format_currency(_PROBE, currency, locale=_LOCALE))
    negative = str(format_currency(-_PROBE, currency, locale=_LOCALE))
    for places in range(MAX_SHOWN_PLACES, -1, -1):  # the most places first: "1,234,567" is in "1,234,567.00"
        number = f"{_PROBE:,.{places}f}"
        if positive.count(number) == 1 and negative.count(number) == 1:
            before, after = positive.split(number)
            negative_before, negative_after = negative.split(number)
            return places, Decimal(1).scaleb(-places), (before, after), (negative_before, negative_after)
    return None


def time_zone() -> ZoneInfo:
    """The reader's time zone (their browser's, from the ``tz`` cookie), else the organisation's."""
    name = request.cookies.get(TZ_COOKIE, "") if has_request_context() else ""
    if not name or len(name) > 64:
        return TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):  # unknown, or not a zone name at all
        return TIME_ZONE


def when(iso: str | None) -> str:
    """An ISO 8601 instant in the reader's time zone, as people write it."""
    if not iso:
        return ""
    instant = datetime.fromisoformat(iso)
    return str(format_datetime(instant, "d MMM yyyy, HH:mm", tzinfo=time_zone(), locale=LOCALE))


def due(iso: str | None, now: datetime | None = None) -> str:
    """A deadline against now, in words: "due in 5 h", "overdue by 2 d"."""
    if not iso:
        return "no deadline"
    left = datetime.fromisoformat(iso) - (now or datetime.now(UTC))
    words = format_timedelta(abs(left), threshold=1.5, format="narrow", locale=LOCALE)
    return f"due in {words}" if left.total_seconds() >= 0 else f"overdue by {words}"


ALERT_WORDS = {
    "float_critical": "Float critical",
    "float_low": "Float low",
    "insufficient_funds": "Waiting for funds",
    "replenishment_proposed": "Replenishment proposed",
    "payment_without_hold": "Payment without a hold",
    "payment_failed": "Payment failed",
    "payment_stuck": "Payment stuck",
    "otp_failures": "Wrong one-time codes",
    "approval_overdue": "Approval overdue",
    "dead_letter": "Message set aside",
}


def alert_words(kind: str) -> str:
    return ALERT_WORDS.get(kind, kind.replace("_", " ").capitalize())


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " "))


class BadAmount(ValueError):
    """An amount typed in a form that is no amount of that currency; the message says why."""


# More digits before the point than any petty-cash amount has (and than 64-bit minor units hold).
MAX_MAJOR_DIGITS = 15


def minor_units(typed: str, currency: str) -> int:
    """``"1,250.50"`` KES as 125050: the major units a person types, in the currency's minor units."""
    exponent = CURRENCY_EXPONENTS.get(currency)
    if exponent is None:
        raise BadAmount("Choose a currency.")
    try:
        major = Decimal(typed.replace(",", "").strip())
    except InvalidOperation:
        raise BadAmount("Enter the amount as a number, such as 1250.00.") from None
    if not major.is_finite():  # NaN, sNaN, Infinity: Decimal reads them, money is none of them
        raise BadAmount("Enter the amount as a number, such as 1250.00.")
    if major.adjusted() >= MAX_MAJOR_DIGITS:
        raise BadAmount("That amount is too large.")
    minor = major.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise BadAmount(f"{currency} amounts have at most {exponent} decimals.")
    return int(minor)
