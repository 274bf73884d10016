"""A report's table in the PDF: rows of one-line cells drawn straight onto the page.

reportlab's own ``Table`` styles, measures and draws each cell as an object of its own, some
fifty microseconds a cell: two thirds of a report's PDF. A report's cells are all one line of
7-point text, so this flowable lays them out once (a column as wide as its widest cell) and
draws each page's rows as one text object and one set of grid lines. At a page's end it splits,
and the heading row starts the next page again.
"""

from __future__ import annotations

from collections.abc import Sequence

from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable

FONT = "Helvetica"
BOLD = "Helvetica-Bold"
FONT_SIZE = 7
PADDING = 6  # points either side of a cell's text
VERTICAL_PADDING = 3  # points above and below it
ROW_HEIGHT = VERTICAL_PADDING + FONT_SIZE * 1.2 + VERTICAL_PADDING
HEADING_BACKGROUND = colors.HexColor("#e8eef3")
GRID = colors.HexColor("#9aa7b1")
GRID_WIDTH = 0.25


def column_widths(rows: Sequence[Sequence[str]], measured: dict[tuple[str, str], float] | None = None) -> list[float]:
    """Each column's width: its widest cell (the heading, the first row, in bold) and the padding.
    ``measured``: the widths found, by (font, text), for the table to draw with (a column's
    repeated values, a branch or a currency, are measured once)."""
    widths = measured if measured is not None else {}
    heading, *body = rows
    columns = zip(*body, strict=True) if body else ([] for _ in heading)
    return [
        max([_width(widths, BOLD, title)] + [_width(widths, FONT, text) for text in cells]) + 2 * PADDING
        for title, cells in zip(heading, columns, strict=True)
    ]


def _width(measured: dict[tuple[str, str], float], font: str, text: str) -> float:
    width = measured.get((font, text))
    if width is None:
        width = measured[font, text] = stringWidth(text, font, FONT_SIZE)
    return width


class GridTable(Flowable):
    """``rows`` (the first is the heading) in a grid, the columns ``right`` names aligned right."""

    def __init__(
        self,
        rows: Sequence[Sequence[str]],
        right: Sequence[int] = (),
        widths: Sequence[float] | None = None,
        measured: dict[tuple[str, str], float] | None = None,
    ) -> None:
        super().__init__()
        self.rows = rows
        self.right = frozenset(right)
        self.measured = measured if measured is not None else {}
        self.widths = list(widths) if widths is not None else column_widths(rows, self.measured)
        self.width = sum(self.widths)
        self.height = ROW_HEIGHT * len(rows)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def split(self, available_width: float, available_height: float) -> list[Flowable]:
        """This page's rows and the rest, under the heading again; nothing when not even the
        heading and one row fit (the table starts on the next page)."""
        fit = int(available_height // ROW_HEIGHT)
        if fit < 2:
            return []
        if fit >= len(self.rows):
            return [self]
        heading = self.rows[0]
        return [
            GridTable(self.rows[:fit], self.right, self.widths, self.measured),
            GridTable([heading, *self.rows[fit:]], self.right, self.widths, self.measured),
        ]

    def draw(self) -> None:
        canvas = self.canv
        lefts = [sum(self.widths[:i]) for i in range(len(self.widths))]
        canvas.setFillColor(HEADING_BACKGROUND)
        canvas.rect(0, self.height - ROW_HEIGHT, self.width, ROW_HEIGHT, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        text = canvas.beginText()
        for n, row in enumerate(self.rows):
            font = BOLD if n == 0 else FONT
            text.setFont(font, FONT_SIZE)
            baseline = self.height - n * ROW_HEIGHT - VERTICAL_PADDING - FONT_SIZE
            for i, cell in enumerate(row):
                if not cell:
                    continue
                x = lefts[i] + PADDING
                if i in self.right:
                    x = lefts[i] + self.widths[i] - PADDING - _width(self.measured, font, cell)
                text.setTextOrigin(x, baseline)
                # Each cell is placed by its origin: the cursor textOut moves (measuring the
                # text again) is never read, so the text is written as it would write it, only.
                text._textOut(cell)
        canvas.drawText(text)
        canvas.setStrokeColor(GRID)
        canvas.setLineWidth(GRID_WIDTH)
        across = [(0, y, self.width, y) for y in (ROW_HEIGHT * n for n in range(len(self.rows) + 1))]
        down = [(x, 0, x, self.height) for x in [*lefts, self.width]]
        canvas.lines(across + down)
