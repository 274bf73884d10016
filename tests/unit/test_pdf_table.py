"""The reports' PDF table (``services.gateway.reporting.pdf_table``), read back with pypdf: every
row once and in order, the heading atop every page it runs onto, the figures' column aligned
right, and text reportlab must encode (an ellipsis, a currency sign) kept."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import SimpleDocTemplate

from services.gateway.reporting.pdf_table import FONT, FONT_SIZE, PADDING, GridTable, column_widths

HEADING = ["Branch", "Memo", "Amount"]


def _pdf(rows: list[list[str]]) -> PdfReader:
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=landscape(A4)).build([GridTable([HEADING, *rows], right=[2])])
    return PdfReader(io.BytesIO(buffer.getvalue()))


def _rows(n: int) -> list[list[str]]:
    return [[f"NBO-{i:03d}", "fuel…" if i % 7 == 0 else f"memo {i}", f"€{i * 1000:,}.00"] for i in range(n)]


def test_every_row_is_written_once_in_order_under_the_heading_of_each_page() -> None:
    rows = _rows(300)
    document = _pdf(rows)
    assert len(document.pages) > 5
    lines = []
    for page in document.pages:
        text = page.extract_text().splitlines()
        assert text[0] == " ".join(HEADING)
        lines += text[1:]
    assert lines == [" ".join(row) for row in rows]


def test_the_figures_end_at_their_columns_right_edge() -> None:
    rows = [[f"NBO-{i:03d}", "memo", f"{i**3 * 1000:,}.00"] for i in range(20)]
    widths = column_widths([HEADING, *rows])
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=landscape(A4)).build([GridTable([HEADING, *rows], right=[2])])
    stream = PdfReader(io.BytesIO(buffer.getvalue())).pages[0].get_contents().get_data().decode("latin-1")
    placed = {text: float(x) for x, text in re.findall(r"1 0 0 1 ([\d.]+) [\d.]+ Tm \((.*?)\) Tj", stream)}
    ends = {round(placed[row[2]] + stringWidth(row[2], FONT, FONT_SIZE), 2) for row in rows}
    assert ends == {round(sum(widths) - PADDING, 2)}  # every amount ends where its column does
    assert placed["NBO-000"] == PADDING  # the others start at their column's left


def test_a_column_is_as_wide_as_its_widest_cell_and_an_empty_table_is_its_heading() -> None:
    widths = column_widths([HEADING, ["x", "a much longer memo than the heading", "1"]])
    assert widths[1] == stringWidth("a much longer memo than the heading", FONT, FONT_SIZE) + 2 * PADDING
    assert GridTable([HEADING]).wrap(500, 500)[1] > 0
