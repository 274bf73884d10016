"""The dashboard page: the API's dashboard, with its two charts drawn as inline SVG on the
server (no script; each chart has its figures in a table beside it)."""

from __future__ import annotations

from typing import Any

from flask import request

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api.dashboard import read_dashboard
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.branches import UnknownBranch
from services.gateway.web import bp, page
from shared.contracts.permissions import Action

WIDTH, HEIGHT = 600, 160


@bp.get("/dashboard")
@permits(Action.READ_DASHBOARD, sessions_only=True)
def dashboard_page() -> Any:
    chosen = request.args.get("branch") or None
    try:
        board = read_dashboard(chosen)
    except UnknownBranch:
        return page("message.html", 404, title="Not found", text="There is no such branch in your scope.")
    codes = sorted(f["branch_code"] for f in read(reads.floats, current_actor()))
    return page(
        "dashboard.html",
        board=board,
        chosen=chosen,
        codes=codes,
        lines=[line_chart(h) for h in board["balance_history"]],
        bars=bar_chart(board["spend_by_category"]),
    )


def line_chart(history: dict[str, Any]) -> dict[str, Any]:
    """A balance history as an SVG polyline's points, scaled to the chart's box."""
    values = [p["balance"]["minor_units"] for p in history["points"]]
    low, high = min(values, default=0), max(values, default=0)
    span = (high - low) or 1
    step = WIDTH / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{HEIGHT - (v - low) * HEIGHT / span:.1f}" for i, v in enumerate(values))
    return {"currency": history["currency"], "points": points, "history": history, "width": WIDTH, "height": HEIGHT}


def bar_chart(spend: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spend by category as bars: each one's width against the largest."""
    largest = max((s["spent"]["minor_units"] for s in spend), default=0) or 1
    return [{**s, "width": round(s["spent"]["minor_units"] * 400 / largest, 1)} for s in spend]
