"""The reports page: a report chosen with its period, branch and category, shown as tables,
with links to the same report as CSV and PDF (the API's, on the same session)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request, url_for
from marshmallow import ValidationError

from services.gateway import reporting
from services.gateway.access import permits
from services.gateway.auth import current_actor
from services.gateway.branches import UnknownBranch, branch_codes
from services.gateway.report_schemas import ReportQuerySchema
from services.gateway.web import bp, page, problem_detail
from shared.contracts import reports as rp
from shared.contracts.payloads import CATEGORIES
from shared.contracts.permissions import Action

DEFAULT_REPORT = "spending"
FORM_FIELDS = ("from", "to", "at", "branch", "category", "limit", "after")


@bp.get("/reports")
@permits(Action.READ_REPORTS, sessions_only=True)
def reports_page() -> Any:
    name = request.args.get("report") or DEFAULT_REPORT
    spec = rp.REPORTS.get(name)
    if spec is None:
        return page("message.html", 404, title="Not found", text="There is no such report.")
    asked = {k: v for k, v in request.args.items() if v and k in spec.parameters}
    values = {"report": name, **{k: request.args.get(k, "") for k in FORM_FIELDS}}
    context = {"spec": spec, "reports": rp.REPORTS, "form": values, "categories": CATEGORIES}
    context["branches"] = sorted(branch_codes().values())
    report, status, error = _fetched(spec, asked)
    if report is None:
        return page("reports.html", status, error=error, **context)
    base = url_for("reports.Report", name=name)
    links = {form: f"{base}?{urlencode({**asked, 'format': form})}" for form in ("csv", "pdf")}
    return page("reports.html", report=report, links=links, next_page=_next_page(report, values), **context)


def _fetched(spec: rp.ReportSpec, asked: dict[str, str]) -> tuple[dict[str, Any] | None, int, str]:
    """The report, or why not: (None, the status, the reason in words)."""
    try:
        return reporting.fetch(spec, ReportQuerySchema().load(asked), current_actor()), 200, ""
    except ValidationError as exc:
        return None, 400, _in_words(exc.messages)
    except UnknownBranch as exc:
        return None, 422, f"There is no branch {exc.code}."
    except reporting.Refused as refused:
        return None, refused.response.status_code, problem_detail(refused.response)


def _in_words(messages: Any) -> str:
    """A form's field errors in a sentence."""
    if not isinstance(messages, dict):
        return str(messages)
    said = "; ".join(f"{name}: {' '.join(map(str, m))}" for name, m in sorted(messages.items()))
    return f"Check the form ({said})."


def _next_page(report: dict[str, Any], values: dict[str, str]) -> str | None:
    """The general ledger's next page, as this page's URL."""
    if not report.get("next"):
        return None
    kept = {k: v for k, v in values.items() if v and k != "after"}
    return url_for("web.reports_page", **kept, after=report["next"])
