"""PDF (reportlab): the title, the export's statement (organisation, filters, generation time, row
count), a summary chart (``chart.ChartSpec``), then the rows as a table over as many A4 landscape pages
as it needs, its header repeated on each page and every page numbered.

The rows are held until the document is built (reportlab lays out a whole story), which is why a PDF is
refused over ``COMPLIANCE_EXPORT_PDF_MAX_ROWS`` rows: CSV and XLSX carry any number. The standard
Helvetica font covers Latin-1: other characters show as a box, and the CSV and XLSX hold them exactly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from typing import BinaryIO
from xml.sax.saxutils import escape

from compliance.exports.chart import ChartSpec, ChartTally
from compliance.exports.statement import ExportStatement

CONTENT_TYPE = "application/pdf"
FONT, FONT_BOLD, FONT_SIZE = "Helvetica", "Helvetica-Bold", 6.5
TABLE_CHUNK = 500  # rows per table flowable: reportlab re-splits a table on every page it spans
PADDING = 3
MAX_COLUMN = 170.0  # points: wider text wraps
SAMPLE = 200  # rows measured for the column widths


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def write_pdf(
    out: BinaryIO,
    header: Sequence[str],
    rows: Iterable[Sequence],
    statement: ExportStatement,
    chart: ChartSpec | None,
) -> int:
    """Write the document to ``out``; return how many rows it holds."""
    from reportlab.lib import colors  # type: ignore[import-untyped]
    from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
    from reportlab.lib.units import mm  # type: ignore[import-untyped]
    from reportlab.pdfbase.pdfmetrics import stringWidth  # type: ignore[import-untyped]
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]

    page_size = landscape(A4)
    margin = 12 * mm
    width = page_size[0] - 2 * margin
    styles = getSampleStyleSheet()
    cell_style = ParagraphStyle("cell", fontName=FONT, fontSize=FONT_SIZE, leading=FONT_SIZE + 1.5)
    tally = ChartTally(chart, header) if chart is not None else None

    texts: list[list[str]] = []
    numeric = [False] * len(header)
    for row in rows:
        if tally is not None:
            tally.add(row)
        if len(texts) < SAMPLE:
            for i, value in enumerate(row):
                numeric[i] = numeric[i] or (isinstance(value, int | Decimal) and not isinstance(value, bool))
        texts.append([_text(value) for value in row])

    def measure(text: str, font: str = FONT) -> float:
        return stringWidth(text, font, FONT_SIZE) + 2 * PADDING

    natural = [
        min(MAX_COLUMN, max([measure(name, FONT_BOLD)] + [measure(row[i]) for row in texts[:SAMPLE]]))
        for i, name in enumerate(header)
    ]
    widths = [w * width / sum(natural) for w in natural] if natural else []

    def cell(text: str, column: int):
        # Only text wider than its column becomes a (wrapping) paragraph: plain strings lay out far faster.
        if measure(text) <= widths[column]:
            return text
        return Paragraph(escape(text), cell_style)

    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), FONT, FONT_SIZE),
            ("FONT", (0, 0), (-1, 0), FONT_BOLD, FONT_SIZE),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf3")),
            ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.HexColor("#8795a8")),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f8fa")]),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), PADDING),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            *[("ALIGN", (i, 0), (i, -1), "RIGHT") for i, is_number in enumerate(numeric) if is_number],
        ]
    )

    story: list = [Paragraph(escape(statement.title), styles["Title"])]
    facts = [
        ("Organisation", statement.organisation),
        ("Generated at", statement.generated_text()),
        ("Rows", str(len(texts))),
        *[(f"Filter: {name}", value) for name, value in statement.filter_lines()],
    ]
    about = Table(
        [[name, Paragraph(escape(value), cell_style)] for name, value in facts], colWidths=[90, 300], hAlign="LEFT"
    )
    about.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (0, -1), FONT_BOLD, 8),
                ("FONT", (1, 0), (1, -1), FONT, 8),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [about, Spacer(1, 6 * mm)]
    if tally is not None:
        story += [_chart(tally, width), Spacer(1, 6 * mm)]
    if not texts:
        story.append(Paragraph("No rows match these filters.", styles["Normal"]))
    chunks = iter(texts)
    while chunk := list(islice(chunks, TABLE_CHUNK)):
        table = Table(
            [list(header), *[[cell(text, i) for i, text in enumerate(row)] for row in chunk]],
            colWidths=widths,
            repeatRows=1,
            hAlign="LEFT",
        )
        table.setStyle(style)
        story.append(table)

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#5b6675"))
        canvas.drawString(
            margin, margin / 2, f"{statement.title} · {statement.organisation} · generated {statement.generated_text()}"
        )
        canvas.drawRightString(page_size[0] - margin, margin / 2, f"Page {doc.page}")
        canvas.restoreState()

    document = SimpleDocTemplate(
        out,
        pagesize=page_size,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=statement.title,
        author="Algo Terminal",
        subject=f"{statement.organisation}: {statement.title}, generated {statement.generated_text()}",
        keywords=", ".join(f"{name}={value}" for name, value in statement.filter_lines()),
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return len(texts)


def _chart(tally: ChartTally, width: float):
    """A bar chart of the tally: one series per measure, categories along the bottom."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart  # type: ignore[import-untyped]
    from reportlab.graphics.charts.legends import Legend  # type: ignore[import-untyped]
    from reportlab.graphics.shapes import Drawing, String  # type: ignore[import-untyped]
    from reportlab.lib import colors

    categories, series = tally.bars()
    height = 150
    drawing = Drawing(width, height + 20)
    drawing.add(String(0, height + 8, tally.spec.title, fontName=FONT_BOLD, fontSize=9))
    if not categories:
        drawing.add(String(0, height / 2, "Nothing to chart: no rows.", fontName=FONT, fontSize=8))
        return drawing
    chart = VerticalBarChart()
    # A few bars are kept narrow rather than stretched over the page.
    plot_width = min(width - 160, max(160, len(categories) * (14 * len(series) + 10)))
    chart.x, chart.y, chart.width, chart.height = 40, 30, plot_width, height - 40
    chart.data = [tuple(values) for values in series]
    chart.categoryAxis.categoryNames = categories
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 6
    if len(categories) > 12:
        chart.categoryAxis.labels.angle = 60
        chart.categoryAxis.labels.boxAnchor = "ne"
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 6
    palette = [colors.HexColor("#2f6fb0"), colors.HexColor("#e08a2c"), colors.HexColor("#3c9a5f")]
    for i in range(len(series)):
        chart.bars[i].fillColor = palette[i % len(palette)]
        chart.bars[i].strokeColor = None
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = chart.x + plot_width + 20, height - 10
    legend.fontName, legend.fontSize = FONT, 7
    legend.colorNamePairs = [(palette[i % len(palette)], name) for i, name in enumerate(tally.series_names())]
    drawing.add(legend)
    return drawing
