"""The reports' schemas: the query a report is asked with, and the report's self-describing
JSON (sections of typed columns and rows), the one shape every report is answered in."""

from __future__ import annotations

from marshmallow import fields, validate

from services.gateway.dumping import ApiSchema
from shared.contracts import reports as rp
from shared.contracts.payloads import CATEGORIES

FORMATS: tuple[str, ...] = ("json", "csv", "pdf")


class ReportQuerySchema(ApiSchema):
    """``GET /api/v1/reports/<name>``: the period (UTC days, both included), or the day of a
    trial balance, a branch and a category; the format; a general ledger page."""

    from_day = fields.Date(data_key="from", metadata={"description": "First day (default: 29 days before 'to')"})
    to_day = fields.Date(data_key="to", metadata={"description": "Last day, included (default: today, UTC)"})
    at = fields.Date(metadata={"description": "Trial balance: its totals at the end of this day (default: today)"})
    branch = fields.String(validate=validate.Length(min=1, max=32), metadata={"description": "A branch code"})
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    format = fields.String(
        validate=validate.OneOf(FORMATS), metadata={"description": "json (default), csv or pdf; else the Accept header"}
    )
    section = fields.String(
        validate=validate.Length(min=1, max=40),
        metadata={"description": "CSV: the section to export (default: the first)"},
    )
    limit = fields.Integer(
        validate=validate.Range(min=1, max=rp.GL_MAX_LIMIT),
        metadata={"description": f"General ledger: transfers per page (default {rp.GL_DEFAULT_LIMIT})"},
    )
    after = fields.String(
        validate=validate.Length(min=1, max=rp.CURSOR_MAX_LENGTH),
        metadata={"description": "General ledger: the cursor the previous page gave as 'next'"},
    )


class ColumnSchema(ApiSchema):
    name = fields.String(required=True)
    title = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(rp.COLUMN_TYPES))


class SectionSchema(ApiSchema):
    name = fields.String(required=True)
    title = fields.String(required=True)
    columns = fields.List(fields.Nested(ColumnSchema), required=True)
    rows = fields.List(
        fields.Dict(keys=fields.String()),
        required=True,
        metadata={
            "description": "One object per row, keyed by column name: money as {minor_units, currency}, "
            "a branch as its code, days and times as ISO 8601, hours as numbers; null where there is none"
        },
    )


class ReportSchema(ApiSchema):
    """A report: what was asked, when it was computed, and its sections."""

    report = fields.String(required=True, validate=validate.OneOf(sorted(rp.REPORTS)))
    title = fields.String(required=True)
    description = fields.String(required=True)
    parameters = fields.Dict(
        keys=fields.String(), values=fields.Raw(allow_none=True), required=True, metadata={"description": "As applied"}
    )
    generated_at = fields.String(required=True, metadata={"format": "date-time"})
    source = fields.String(required=True, metadata={"description": "The service that computed it from its own tables"})
    sections = fields.List(fields.Nested(SectionSchema), required=True)
    next = fields.String(
        required=True, allow_none=True, metadata={"description": "General ledger: the cursor of the next page, if any"}
    )


class ReportInfoSchema(ApiSchema):
    name = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    source = fields.String(required=True)
    parameters = fields.List(fields.String(), required=True)
    formats = fields.List(fields.String(), required=True)
    url = fields.String(required=True)


class ReportListSchema(ApiSchema):
    items = fields.List(fields.Nested(ReportInfoSchema), required=True)
