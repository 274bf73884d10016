"""A report as PDF (reportlab): its title, what was asked, each section as a table, and a chart
where one reads better than figures (each float's balance over the period, spending by
category). Money is shown in its currency's format, as on the pages."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

from services.gateway.reporting.pdf_table import GridTable
from services.gateway.web.formatting import money, when

# A PDF is for reading: past this many rows a section says so, and the CSV has them all.
MAX_ROWS = 1500
MAX_CELL = 48
CHART_SERIES = 6
PALETTE = tuple(colors.HexColor(c) for c in ("#1f5f8b", "#b5451b", "#2e7d32", "#6a1b9a", "#8d6e00", "#37474f"))
STYLES = getSampleStyleSheet()


def cell(kind: str, value: Any) -> str:
    """One value as the PDF shows it (plain text: a table cell is never parsed as markup)."""
    if value is None or value == "":
        return ""
    shown = {
        "money": lambda: money(value),
        "datetime": lambda: when(value),
        "bool": lambda: "yes" if value else "no",
    }.get(kind, lambda: str(value))()
    return shown if len(shown) <= MAX_CELL else shown[: MAX_CELL - 1] + "…"


def _table(section: dict[str, Any]) -> list[Flowable]:
    columns = section["columns"]
    rows = section["rows"]
    shown = rows[:MAX_ROWS]
    data = [[c["title"] for c in columns], *([cell(c["type"], r.get(c["name"])) for c in columns] for r in shown)]
    money_columns = [i for i, c in enumerate(columns) if c["type"] in ("money", "int", "number")]
    table = GridTable(data, right=money_columns)
    parts: list[Flowable] = [Paragraph(escape(section["title"]), STYLES["Heading2"])]
    if not rows:
        return [*parts, Paragraph("Nothing in this period.", STYLES["Normal"])]
    parts.append(table)
    if len(rows) > MAX_ROWS:
        note = f"The first {MAX_ROWS:,} of {len(rows):,} rows; the CSV export has them all."
        parts.append(Paragraph(note, STYLES["Italic"]))
    return parts


def _balance_chart(report: dict[str, Any]) -> Drawing | None:
    """Each float's closing balance day by day (the first few floats), as lines."""
    days = next((s["rows"] for s in report["sections"] if s["name"] == "days"), [])
    series: dict[str, list[tuple[int, int]]] = {}
    for row in days:
        points = series.setdefault(f"{row['branch']} {row['currency']}", [])
        if len(series) <= CHART_SERIES:
            points.append((len(points), int(row["closing_balance"]["minor_units"])))
    lines = {name: points for name, points in list(series.items())[:CHART_SERIES] if points}
    if not lines:
        return None
    currency = days[0]["currency"]
    drawing = Drawing(250 * mm, 70 * mm)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 25 * mm, 10 * mm, 170 * mm, 55 * mm
    plot.data = list(lines.values())
    plot.yValueAxis.labelTextFormat = _major(currency)
    legend = Legend()
    legend.x, legend.y = 200 * mm, 60 * mm
    legend.colorNamePairs = []
    for i, (name, color) in enumerate(zip(lines, PALETTE, strict=False)):
        plot.lines[i].strokeColor = color
        legend.colorNamePairs.append((color, name))
    drawing.add(plot)
    drawing.add(legend)
    return drawing


def _spending_chart(report: dict[str, Any]) -> Drawing | None:
    """Spending by category, as bars (the first currency's)."""
    rows = next((s["rows"] for s in report["sections"] if s["name"] == "by_category"), [])
    if not rows:
        return None
    currency = rows[0]["currency"]
    rows = [r for r in rows if r["currency"] == currency]
    drawing = Drawing(250 * mm, 70 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 25 * mm, 15 * mm, 200 * mm, 50 * mm
    chart.data = [[int(r["spent"]["minor_units"]) for r in rows]]
    chart.categoryAxis.categoryNames = [r["category"].replace("_", " ") for r in rows]
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labelTextFormat = _major(currency)
    chart.bars[0].fillColor = colors.HexColor("#1f5f8b")
    drawing.add(chart)
    return drawing


def _major(currency: str) -> Callable[[float], str]:
    return lambda minor: money({"minor_units": int(minor), "currency": currency})


CHARTS: dict[str, Callable[[dict[str, Any]], Drawing | None]] = {
    "fund-health": _balance_chart,
    "spending": _spending_chart,
}


def render(report: dict[str, Any]) -> bytes:
    """The report as a PDF document."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=report["title"],
        author="Petty cash",
    )
    asked = ", ".join(f"{k}: {v}" for k, v in report["parameters"].items() if v is not None) or "defaults"
    story: list[Flowable] = [
        Paragraph(escape(report["title"]), STYLES["Title"]),
        Paragraph(
            escape(f"{report['description']} ({asked}; computed {when(report['generated_at'])})"), STYLES["Normal"]
        ),
        Spacer(1, 4 * mm),
    ]
    chart = CHARTS.get(report["report"], lambda _r: None)(report)
    if chart is not None:
        story.append(chart)
    for section in report["sections"]:
        story += _table(section)
    document.build(story)
    return buffer.getvalue()
