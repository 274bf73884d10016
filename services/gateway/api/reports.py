"""``/api/v1/reports``: the reports finance, the CFO and auditors read (managers, their
branches'), as JSON, CSV or PDF (``services.gateway.reporting``)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, url_for
from flask.views import MethodView

from services.gateway import problems, reporting
from services.gateway.access import permits
from services.gateway.api import Blueprint
from services.gateway.auth import current_actor
from services.gateway.report_schemas import ReportListSchema, ReportQuerySchema, ReportSchema
from services.gateway.reporting import render_csv, render_pdf
from shared.contracts import reports as rp
from shared.contracts.permissions import Action

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")

REPORT_NAME = {
    "in": "path",
    "name": "name",
    "description": "The report (GET /api/v1/reports lists them)",
    "schema": {"type": "string", "enum": sorted(rp.REPORTS)},
}
# The 200 in each format (a manual doc replaces the content flask-smorest writes for the JSON).
FILE_FORMATS = {
    "responses": {
        "200": {
            "description": "The report, as JSON, CSV or PDF",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
            "headers": {
                "Content-Disposition": {
                    "description": "CSV and PDF: attachment, with the report's file name",
                    "schema": {"type": "string"},
                }
            },
        }
    }
}


@blp.route("")
class Reports(MethodView):
    @permits(Action.READ_REPORTS)
    @blp.response(200, ReportListSchema)
    @blp.problem(403, "Not finance, CFO, auditor or a manager")
    def get(self) -> Any:
        """Every report, with the parameters it takes and where it is read."""
        return {"items": reporting.catalogue(lambda name: url_for("reports.Report", name=name))}


@blp.route("/<name>", parameters=[REPORT_NAME])
class Report(MethodView):
    @permits(Action.READ_REPORTS)
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, ReportSchema)
    @blp.doc(**FILE_FORMATS)
    @blp.problem(400, "A malformed day, format, limit or cursor, or a parameter this report does not take")
    @blp.problem(403, "Not finance, CFO, auditor or a manager")
    @blp.problem(404, "No such report")
    @blp.problem(422, "The period ends before it starts or is longer than 366 days, or no branch has that code")
    def get(self, args: dict[str, Any], name: str) -> Any:
        """One report over a period (UTC days, both included; the last 30 days by default), a
        branch and a category, in your scope, as JSON, CSV (``format=csv``: one section, the
        first unless ``section`` names another) or PDF. Computed by the service that owns the
        facts, from its own tables, when asked."""
        try:
            spec = reporting.spec_of(name)
            report = reporting.fetch(spec, args, current_actor())
            return answer(report, reporting.chosen_format(args), args.get("section"))
        except reporting.Refused as refused:
            return refused.response


def answer(report: dict[str, Any], form: str, section_name: str | None = None) -> Response:
    """The report in the format asked for."""
    if form == "csv":
        sections = {s["name"]: s for s in report["sections"]}
        chosen = sections.get(section_name or report["sections"][0]["name"])
        if chosen is None:
            names = ", ".join(sections)
            return problems.problem(400, "invalid-request", f"This report has no section {section_name!r}: {names}.")
        return _file(render_csv.render(chosen), "text/csv; charset=utf-8", reporting.filename(report, "csv"))
    if form == "pdf":
        return _file(render_pdf.render(report), "application/pdf", reporting.filename(report, "pdf"))
    # ``reporting.fetch`` builds exactly the shape ReportSchema documents (the contract tests hold
    # the answers to it): dumping a report's thousands of rows through it again would cost more
    # than the service took to compute them.
    return Response(current_app.json.dumps(report), mimetype="application/json")


def _file(content: str | bytes, mimetype: str, name: str) -> Response:
    response = Response(content, content_type=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
