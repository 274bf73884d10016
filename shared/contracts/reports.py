"""The reports finance, the CFO and auditors read: their names, the service that computes each
from its own tables, the parameters each takes, and the query payload that asks for one.

A report is computed by a query task of the service that owns its facts (``<service>.run_report``
on ``<service>-queries``, never behind saga events) and rendered by the gateway as JSON, CSV or
PDF. Its reply is self-describing: sections, each with typed columns and rows, so one renderer
serves every report. Money in rows is ``{"minor_units", "currency"}``; a column of type
``branch`` holds a branch id, which the gateway shows as the branch's code.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from marshmallow import Schema, fields, validate

# A period longer than this is refused (422): a report is a page of figures, not a dump.
MAX_PERIOD_DAYS = 366
# The general ledger export is paged: ``limit`` transfers a page, after the cursor.
GL_DEFAULT_LIMIT = 1000
GL_MAX_LIMIT = 5000
CURSOR_MAX_LENGTH = 200

COLUMN_TYPES: tuple[str, ...] = ("text", "branch", "date", "datetime", "int", "number", "money", "bool")


@dataclass(frozen=True)
class ReportSpec:
    """One report: its name (the URL's), title, owning service and the parameters it takes."""

    name: str
    title: str
    service: str
    parameters: tuple[str, ...]
    description: str


PERIOD = ("from", "to", "branch")
REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec(
            "payment-summary",
            "Payment summary",
            "payment",
            PERIOD,
            "Payments made in the period by method, status and branch: how many and how much.",
        ),
        ReportSpec(
            "fund-health",
            "Fund health",
            "ledger",
            PERIOD,
            "Each float's closing balance day by day, the days it spent below its reorder level, "
            "and the replenishments of the period.",
        ),
        ReportSpec(
            "variance-analysis",
            "Variance analysis",
            "ledger",
            PERIOD,
            "Cash counts of the period by branch: shortages, overages, and their decisions.",
        ),
        ReportSpec(
            "spending",
            "Spending by branch and category",
            "ledger",
            (*PERIOD, "category"),
            "Money paid out of the floats in the period, by branch and category.",
        ),
        ReportSpec(
            "approval-turnaround",
            "Approval turnaround",
            "approval",
            (*PERIOD, "category"),
            "Hours each approval step took (median and 90th percentile) by tier and role, and "
            "the escalations, for the steps decided in the period.",
        ),
        ReportSpec(
            "trial-balance",
            "Trial balance",
            "ledger",
            ("at", "branch"),
            "Every account's debits, credits and balance at the end of a day (UTC), and the totals.",
        ),
        ReportSpec(
            "general-ledger",
            "General ledger",
            "ledger",
            (*PERIOD, "category", "limit", "after"),
            "The transfers of the period in the order they were written, a page at a time.",
        ),
    )
}
REPORT_SERVICES: tuple[str, ...] = ("ledger", "approval", "payment")


class ReportPayload(Schema):
    """Query ``<service>.run_report``: one report over a period (or at a day), in the actor's scope.

    Days are UTC days, both ends included; the gateway checks the period before it asks.
    """

    report = fields.String(required=True, validate=validate.OneOf(sorted(REPORTS)))
    from_day = fields.Date(load_default=None, allow_none=True)
    to_day = fields.Date(load_default=None, allow_none=True)
    at = fields.Date(load_default=None, allow_none=True)
    branch_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=32))
    limit = fields.Integer(load_default=GL_DEFAULT_LIMIT, validate=validate.Range(min=1, max=GL_MAX_LIMIT))
    after = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=CURSOR_MAX_LENGTH))


class BadCursor(ValueError):
    """A cursor no page of the general ledger gave."""


def encode_cursor(created_at: datetime, transfer_id: uuid.UUID | str) -> str:
    """Where a general ledger page ended: the last transfer's time and id, opaque to clients."""
    raw = f"{created_at.isoformat()}|{transfer_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) a cursor names; :class:`BadCursor` if it names none."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, transfer_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when, uuid.UUID(transfer_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("This cursor was not given by a page of this export.") from exc


def period_error(from_day: date, to_day: date) -> str | None:
    """Why a period cannot be reported on, or None."""
    if from_day > to_day:
        return "The period ends before it starts ('from' is after 'to')."
    if (to_day - from_day).days + 1 > MAX_PERIOD_DAYS:
        return f"A report covers at most {MAX_PERIOD_DAYS} days."
    return None


def money(minor: int, currency: str) -> dict[str, Any]:
    """Money as report rows carry it (integer minor units with the currency)."""
    return {"minor_units": int(minor), "currency": currency}


def column(name: str, title: str, kind: str = "text") -> dict[str, str]:
    """A column of a report's section: its row key, its heading and its type (``COLUMN_TYPES``)."""
    return {"name": name, "title": title, "type": kind}


def section(name: str, title: str, columns: list[dict[str, str]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A table of a report: its columns and its rows (each a dict by column name)."""
    return {"name": name, "title": title, "columns": columns, "rows": rows}
