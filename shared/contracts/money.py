"""Money on the wire and in memory: integer minor units with an ISO 4217 currency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

# Active ISO 4217 codes and their minor-unit exponents. Funds codes and precious
# metals are left out on purpose: nobody pays a petty-cash voucher in XAU.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2,
    "CDF": 2, "CHF": 2, "CLP": 0, "CNY": 2, "COP": 2, "CRC": 2, "CUP": 2, "CVE": 2,
    "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2,
    "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2,
    "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2,
    "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0,
    "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2,
    "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2,
    "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
    "MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2,
    "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2,
    "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0,
    "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2,
    "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2,
    "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2,
    "UAH": 2, "UGX": 0, "USD": 2, "UYU": 2, "UZS": 2, "VES": 2, "VND": 0, "VUV": 0,
    "WST": 2, "XAF": 0, "XCD": 2, "XOF": 0, "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2,
    "ZWG": 2,
}  # fmt: skip

# Far above any petty-cash amount, far below 2**63: a typo, not an overflow, is refused.
MAX_MINOR_UNITS = 10**13


@dataclass(frozen=True, order=True)
class Money:
    """An amount of one currency, in integer minor units (cents, not dollars)."""

    currency: str
    minor_units: int

    def __post_init__(self) -> None:
        if type(self.minor_units) is not int:
            raise TypeError("Money.minor_units must be an int")
        if self.currency not in CURRENCY_EXPONENTS:
            raise ValueError(f"unknown currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.currency, self.minor_units + other.minor_units)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.currency, self.minor_units - other.minor_units)

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{"minor_units": 1250, "currency": "KES"}``."""
        return {"minor_units": self.minor_units, "currency": self.currency}

    def __str__(self) -> str:
        exponent = CURRENCY_EXPONENTS[self.currency]
        sign = "-" if self.minor_units < 0 else ""
        units, minor = divmod(abs(self.minor_units), 10**exponent)
        fraction = f".{minor:0{exponent}d}" if exponent else ""
        return f"{sign}{units:,}{fraction} {self.currency}"


class StrictInteger(fields.Integer):
    """An integer that refuses floats, numeric strings and booleans on input."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if type(value) is not int:
            raise ValidationError("Must be an integer number of minor units (no decimals).")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


class MoneySchema(Schema):
    """``{"minor_units": <int>, "currency": "<ISO 4217>"}``; positive amounts only."""

    minor_units = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_MINOR_UNITS))
    currency = fields.String(
        required=True,
        validate=validate.OneOf(sorted(CURRENCY_EXPONENTS), error="Unknown ISO 4217 currency."),
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Money:
        return Money(data["currency"], data["minor_units"])
