"""Reports, as the gateway asks for them and answers them: the request checked and turned into
the owning service's ``run_report`` query, the reply shaped for readers (branch codes, the
parameters applied), and the format chosen (``render_csv``, ``render_pdf``).

The figures are the services' own: each report is computed by the service that owns its facts,
from its own tables, on its queries queue, so a report is as current as that service.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, request

from services.gateway import problems
from services.gateway.api import ctx
from services.gateway.branches import branch, branch_codes
from shared.contracts import reports as rp
from shared.contracts.catalog import REPORT_QUERIES
from shared.contracts.envelope import Actor

# A report waits this long for its service (its query expires with the wait); then 503.
WAIT_SECONDS = 15.0
DEFAULT_DAYS = 30
# What the query string may name besides a report's own parameters.
PRESENTATION = frozenset({"format", "section"})
ARGUMENT_OF = {"from": "from_day", "to": "to_day"}
FORMAT_OF_TYPE = {"application/json": "json", "text/csv": "csv", "application/pdf": "pdf"}


class Refused(Exception):
    """A report request that cannot be answered with a report: its problem response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _refuse(status: int, code: str, detail: str) -> Refused:
    return Refused(problems.problem(status, code, detail))


def catalogue(url_of: Any) -> list[dict[str, Any]]:
    """Every report with the parameters it takes (``url_of(name)``: where it is read)."""
    return [
        {
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "source": spec.service,
            "parameters": list(spec.parameters),
            "formats": ["json", "csv", "pdf"],
            "url": url_of(spec.name),
        }
        for spec in rp.REPORTS.values()
    ]


def spec_of(name: str) -> rp.ReportSpec:
    """The report with this name, or 404."""
    spec = rp.REPORTS.get(name)
    if spec is None:
        raise _refuse(404, "not-found", f"There is no report {name!r}; GET /api/v1/reports lists them.")
    return spec


def chosen_format(args: dict[str, Any]) -> str:
    """``?format=`` if given, else the best the Accept header takes (JSON when it takes any)."""
    if args.get("format"):
        return str(args["format"])
    best = request.accept_mimetypes.best_match(list(FORMAT_OF_TYPE), default="application/json")
    return FORMAT_OF_TYPE.get(best or "", "json")


def _period(args: dict[str, Any]) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    to_day = args.get("to_day") or today
    from_day = args.get("from_day") or to_day - timedelta(days=DEFAULT_DAYS - 1)
    wrong = rp.period_error(from_day, to_day)
    if wrong is not None:
        raise _refuse(422, "invalid-period", wrong)
    return from_day, to_day


def query_of(spec: rp.ReportSpec, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``run_report`` payload for a report's checked arguments, and the parameters applied."""
    taken = {ARGUMENT_OF.get(p, p) for p in spec.parameters} | PRESENTATION
    stray = sorted(next((k for k, v in ARGUMENT_OF.items() if v == name), name) for name in args if name not in taken)
    if stray:
        detail = f"The {spec.name} report takes no {', '.join(stray)}; it takes {', '.join(spec.parameters)}."
        raise _refuse(400, "invalid-request", detail)
    payload: dict[str, Any] = {"report": spec.name}
    applied: dict[str, Any] = {}
    for part in (_when, _where, _page):
        asked, shown = part(spec, args)
        payload |= asked
        applied |= shown
    return payload, applied


Part = tuple[dict[str, Any], dict[str, Any]]


def _when(spec: rp.ReportSpec, args: dict[str, Any]) -> Part:
    if "from" in spec.parameters:
        from_day, to_day = (d.isoformat() for d in _period(args))
        return {"from_day": from_day, "to_day": to_day}, {"from": from_day, "to": to_day}
    at = (args.get("at") or datetime.now(UTC).date()).isoformat()
    return {"at": at}, {"at": at}


def _where(_spec: rp.ReportSpec, args: dict[str, Any]) -> Part:
    asked: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    if args.get("branch"):
        asked["branch_id"], shown["branch"] = branch(args["branch"]).id, args["branch"]
    if args.get("category"):
        asked["category"] = shown["category"] = args["category"]
    return asked, shown


def _page(spec: rp.ReportSpec, args: dict[str, Any]) -> Part:
    if "limit" not in spec.parameters:
        return {}, {}
    page = {"limit": args.get("limit") or rp.GL_DEFAULT_LIMIT, "after": _cursor(args.get("after"))}
    return page, dict(page)


def _cursor(after: str | None) -> str | None:
    if after is not None:
        try:
            rp.decode_cursor(after)
        except rp.BadCursor as exc:
            raise _refuse(400, "bad-cursor", str(exc)) from exc
    return after


def fetch(spec: rp.ReportSpec, args: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """The report, computed by its service in the actor's scope and shaped for readers."""
    payload, applied = query_of(spec, args)
    [reply] = ctx().bus.ask([(REPORT_QUERIES[spec.service], payload)], actor, WAIT_SECONDS)
    if reply is None:
        response = problems.problem(503, "service-unavailable", f"The {spec.service} service did not answer in time.")
        response.headers["Retry-After"] = str(problems.RETRY_AFTER_SECONDS)
        raise Refused(response)
    if reply["status"] >= 400:
        raise Refused(problems.from_reply(reply))
    body = reply["body"]
    return {
        "report": spec.name,
        "title": spec.title,
        "description": spec.description,
        "parameters": applied,
        "generated_at": datetime.now(UTC).isoformat(),
        "source": spec.service,
        "sections": [_with_codes(s, branch_codes()) for s in body["sections"]],
        "next": body.get("next"),
    }


def _with_codes(section: dict[str, Any], codes: dict[str, str]) -> dict[str, Any]:
    """A section with each branch id shown as the branch's code."""
    named = [c["name"] for c in section["columns"] if c["type"] == "branch"]
    if not named:
        return section
    rows = [{**row, **{n: codes.get(row[n], row[n]) for n in named if row.get(n)}} for row in section["rows"]]
    return {**section, "rows": rows}


def filename(report: dict[str, Any], extension: str) -> str:
    """What a downloaded report is called: its name and period (or day), e.g. ``spending-2026-11-01-2026-11-30.csv``."""
    p = report["parameters"]
    span = [p[k] for k in ("from", "to", "at") if p.get(k)]
    if p.get("branch"):
        span.append(p["branch"])
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in "-".join([report["report"], *span]))
    return f"{safe}.{extension}"
