"""A report's section as CSV (RFC 4180, UTF-8): one row per row, a column per column; money as
its exact decimal amount in major units (from the integer minor units, never a float) with a
``<name>_currency`` column beside it."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from shared.contracts.money import CURRENCY_EXPONENTS

# A text cell a spreadsheet would take for a formula is written as text (OWASP's CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def decimal_amount(amount: dict[str, Any]) -> str:
    """``{"minor_units": -49800, "currency": "KES"}`` as ``-498.00``."""
    exponent = CURRENCY_EXPONENTS[amount["currency"]]
    return f"{Decimal(int(amount['minor_units'])).scaleb(-exponent):.{exponent}f}"


def header(columns: list[dict[str, str]]) -> list[str]:
    """The CSV's column names: each column's, and a currency column after each money one."""
    names: list[str] = []
    for c in columns:
        names += [c["name"], f"{c['name']}_currency"] if c["type"] == "money" else [c["name"]]
    return names


def cells(columns: list[dict[str, str]], row: dict[str, Any]) -> list[str]:
    """One row's cells, in the header's order."""
    out: list[str] = []
    for c in columns:
        value = row.get(c["name"])
        if c["type"] == "money":
            out += [decimal_amount(value), value["currency"]] if value else ["", ""]
        elif value is None:
            out.append("")
        elif c["type"] == "bool":
            out.append("true" if value else "false")
        elif c["type"] == "text" and str(value).startswith(FORMULA_STARTS):
            out.append(f"'{value}")
        else:
            out.append(str(value))
    return out


def render(section: dict[str, Any]) -> str:
    """The section as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header(section["columns"]))
    for row in section["rows"]:
        writer.writerow(cells(section["columns"], row))
    return buffer.getvalue()
