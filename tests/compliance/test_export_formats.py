"""The exports sent while the request waits: CSV, XLSX and PDF each hold exactly the report's rows,
state their filters and generation time (XLSX on its "About" sheet, PDF in its heading, CSV in comment
lines before its header row), and carry their SHA-256: a ``Repr-Digest`` header and the audit event for XLSX and PDF, an
audit event written after the last byte for a streamed CSV. An empty range is a valid empty file."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import RequestFactory
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import Organisation
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance.exports.csvfile import csv_lines
from compliance.exports.formats import write_export
from compliance.exports.responses import csv_stream_response
from compliance.exports.statement import ExportStatement
from compliance.views import ORDER_TO_TRADE_HEADER, TRADE_TRAIL_HEADER
from core.tabular import csv_cell
from tests.compliance.exporting import (
    EXPORT,
    OTR_EXPORT,
    body,
    buy,
    csv_preamble,
    csv_rows,
    csv_statement,
    more_trades,
    sha256,
    today,
)

pytestmark = pytest.mark.django_db


def _digest(response) -> str:
    """The hex SHA-256 a response's Repr-Digest names."""
    value = response["Repr-Digest"]
    assert value.startswith("sha-256=:") and value.endswith(":")
    return base64.b64decode(value[len("sha-256=:") : -1]).hex()


def _theirs():
    other = Organisation.objects.create(name="Other", slug="other")
    return BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")


def _pdf_text(data: bytes) -> tuple[object, str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_the_csv_is_its_statement_and_the_rows_and_its_sha256_is_audited_after_the_last_byte(world, signed_in):
    first = buy(world)
    more_trades(first, 30)
    buy(world, account=_theirs())
    response = signed_in(world.owner).get(EXPORT, REMOTE_ADDR="10.1.2.3")
    assert response.streaming and "Repr-Digest" not in response  # a stream cannot name its hash first
    started = AuditEvent.objects.get(action="compliance.report_exported")
    assert not AuditEvent.objects.filter(action="compliance.report_export_sent").exists()
    data = body(response)
    rows = csv_rows(data)
    assert rows[0] == list(TRADE_TRAIL_HEADER) and len(rows) == 32
    assert {row[9] for row in rows[1:]} == {first.broker_trade_id} | {f"X{i:08d}" for i in range(30)}
    sent = AuditEvent.objects.get(action="compliance.report_export_sent")
    assert sent.payload_data == {
        "export": started.pk,
        "report": "trade_trail",
        "format": "csv",
        "bytes": len(data),
        "sha256": sha256(data),
    }
    assert sent.actor == f"user:{world.owner.pk}" and sent.ip == "10.1.2.3"


def test_an_abandoned_csv_stream_reports_no_digest():
    """A client that goes away closes the stream before its last byte: no SHA-256 is recorded for bytes
    never sent (the export's start is already on record)."""
    sent: list[tuple[str, int]] = []
    lines = iter(["a,b\r\n"] + ["1,2\r\n"] * 5000)
    response = csv_stream_response(RequestFactory().get("/"), lines, "x.csv", on_sent=lambda *args: sent.append(args))
    chunks = iter(response)
    next(chunks)
    response.close()
    assert sent == []
    whole = csv_stream_response(
        RequestFactory().get("/"), iter(["a,b\r\n", "1,2\r\n"]), "x.csv", on_sent=lambda *a: sent.append(a)
    )
    data = b"".join(whole)
    assert sent == [(sha256(data), len(data))]


def test_the_xlsx_holds_the_rows_an_about_sheet_and_its_digest(world, signed_in):
    from openpyxl import load_workbook

    first = buy(world, algo_id="=HYPERLINK(1)")
    more_trades(first, 5)
    buy(world, account=_theirs())
    response = signed_in(world.admin).get(EXPORT, {"format": "xlsx", "algo": "=HYPERLINK(1)"})
    data = body(response)
    assert response.status_code == 200 and _digest(response) == sha256(data)
    workbook = load_workbook(io.BytesIO(data), read_only=True)
    assert workbook.sheetnames == ["trade trail", "About"]
    rows = [list(row) for row in workbook["trade trail"].iter_rows(values_only=True)]
    assert rows[0] == list(TRADE_TRAIL_HEADER) and len(rows) == 7
    assert sorted(row[9] for row in rows[1:]) == sorted([first.broker_trade_id] + [f"X{i:08d}" for i in range(5)])
    about = {row[0]: row[1] for row in workbook["About"].iter_rows(values_only=True)}
    assert about["Report"] == "Trade trail" and about["Organisation"] == "Acme" and about["Rows"] == 6
    assert about["Filter: from"] == today() and about["Filter: account"] == "any"
    assert about["Filter: algo_id"] == "'=HYPERLINK(1)"  # typed text stays text
    assert "IST (" in about["Generated at"] and about["Generated at"].endswith("Z)")
    event = AuditEvent.objects.get(action="compliance.report_exported")
    assert event.payload_data["sha256"] == sha256(data) and event.payload_data["bytes"] == len(data)
    assert event.payload_data["rows"] == 6 and event.payload_data["format"] == "xlsx"


def test_the_pdf_holds_exactly_the_rows_its_statement_and_a_chart(world, signed_in):
    first = buy(world)
    extra = more_trades(first, 120, spread_days=3)  # several pages, three days in the chart
    theirs = buy(world, account=_theirs())
    since = (date.fromisoformat(today()) - timedelta(days=3)).isoformat()
    response = signed_in(world.owner).get(EXPORT, {"format": "pdf", "from": since, "to": today()})
    data = body(response)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert _digest(response) == sha256(data)
    assert response["Content-Disposition"].endswith(f'-to-{today()}.pdf"')
    reader, text = _pdf_text(data)
    assert len(reader.pages) > 2
    ids = [first.broker_trade_id] + [t.broker_trade_id for t in extra]
    for trade_id in ids:
        assert text.count(trade_id) == 1, trade_id
    assert theirs.broker_trade_id not in text
    assert text.splitlines().count("RELIANCE") == len(ids)  # a cell per line: one symbol cell per row, no more
    assert "Trade trail" in text and "Acme" in text and "Filter: from" in text and since in text
    assert "Generated at" in text and "Rows per day" in text and "Page 1" in text
    assert reader.metadata.title == "Trade trail" and "Acme" in reader.metadata.subject
    event = AuditEvent.objects.get(action="compliance.report_exported")
    assert event.payload_data["format"] == "pdf" and event.payload_data["sha256"] == sha256(data)


def test_the_order_to_trade_pdf_charts_orders_and_trades_per_day(world, signed_in):
    buy(world)
    response = signed_in(world.owner).get(OTR_EXPORT, {"format": "pdf"})
    _, text = _pdf_text(body(response))
    assert "Order-to-trade ratio" in text and "Orders and trades per day" in text
    assert ORDER_TO_TRADE_HEADER[0] in text and "P1" in text


@pytest.mark.parametrize("export_format", ["csv", "xlsx", "pdf"])
def test_an_empty_range_is_a_valid_empty_file(world, signed_in, export_format):
    from openpyxl import load_workbook

    response = signed_in(world.owner).get(EXPORT, {"format": export_format})
    data = body(response)
    assert response.status_code == 200
    if export_format == "csv":
        assert csv_rows(data) == [list(TRADE_TRAIL_HEADER)]
    elif export_format == "xlsx":
        workbook = load_workbook(io.BytesIO(data), read_only=True)
        assert [list(r) for r in workbook["trade trail"].iter_rows(values_only=True)] == [list(TRADE_TRAIL_HEADER)]
        assert dict(workbook["About"].iter_rows(values_only=True))["Rows"] == 0
    else:
        reader, text = _pdf_text(data)
        assert len(reader.pages) == 1 and "No rows match these filters." in text and "Rows\n0\n" in text
    assert AuditEvent.objects.get(action="compliance.report_exported").payload_data["rows"] == 0


def test_a_pdf_over_its_row_limit_is_refused_for_csv_or_xlsx(world, signed_in, settings):
    settings.COMPLIANCE_EXPORT_PDF_MAX_ROWS = 3
    more_trades(buy(world), 3)
    response = signed_in(world.owner).get(EXPORT, {"format": "pdf"})
    html = response.content.decode()
    assert response.status_code == 422 and 'data-code="pdf_too_many_rows"' in html
    assert "A PDF holds at most 3 rows and this range has 4" in html
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_each_report_offers_csv_xlsx_and_pdf(world, signed_in):
    client = signed_in(world.owner)
    for page in ("/orgs/acme/compliance/trades/", "/orgs/acme/compliance/order-to-trade/"):
        html = client.get(page).content.decode()
        assert "format=xlsx" in html and "format=pdf" in html and ">Export CSV<" in html
        assert "/orgs/acme/compliance/exports/" in html


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(["format", "from", "to", "account", "algo", "source", "page"]),
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(["pdf", "xlsx", "csv", "PDF", " xlsx ", "2025-01-01", "99999999999999999999", "\x00"]),
        ),
    )
)
def test_hostile_export_parameters_get_a_file_or_a_422_never_a_500(world, signed_in, params):
    client = signed_in(world.owner)
    response = client.get(EXPORT, params)
    assert response.status_code in (200, 303, 400, 422), (
        params,
        response.status_code,
    )  # 400: a NUL byte (core.request_guard)
    if response.status_code == 422:
        assert b'data-code="' in response.content


def test_under_asgi_the_streamed_csv_records_its_sha256_after_the_last_chunk(world):
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from tests.otp_session import login_with_otp

    more_trades(buy(world), 1200)  # several chunks
    client = login_with_otp(AsyncClient(), world.owner)

    async def export():
        response = await client.get(EXPORT)
        assert response.is_async
        return b"".join([chunk async for chunk in response.streaming_content])

    data = async_to_sync(export)()
    assert len(csv_rows(data)) == 1202
    assert AuditEvent.objects.get(action="compliance.report_export_sent").payload_data["sha256"] == sha256(data)


def _statement(filters: dict[str, str], title: str = "Trade trail", organisation: str = "Acme") -> ExportStatement:
    return ExportStatement(
        title=title,
        organisation=organisation,
        report="trade_trail",
        filters=filters,
        generated_at=datetime(2026, 1, 5, 4, 45, tzinfo=UTC),
    )


def test_the_csv_states_its_report_filters_and_generation_time_before_its_header(world, signed_in):
    buy(world, algo_id="ALGO-7")
    response = signed_in(world.owner).get(EXPORT, {"algo": "ALGO-7", "source": "web"})
    data = body(response)
    assert csv_preamble(data) == [
        "Report: Trade trail",
        "Organisation: Acme",
        f"from: {today()}",
        f"to: {today()}",
        "account: any",
        "algo_id: ALGO-7",
        "source: web",
        csv_preamble(data)[-1],
    ]
    generated = csv_statement(data)["Generated"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d IST \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", generated)
    event = AuditEvent.objects.get(action="compliance.report_exported")
    assert abs(datetime.fromisoformat(generated.split("(")[1].rstrip(")")) - event.created_at) < timedelta(seconds=5)
    text = data.decode()
    header_at = text.index("executed_at_ist,")
    assert all(line.startswith("# ") for line in text[:header_at].split("\r\n")[:-1])  # nothing else before it
    rows = csv_rows(data)
    assert rows[0] == list(TRADE_TRAIL_HEADER) and len(rows) == 2 and rows[1][11] == "ALGO-7"
    assert sha256(data) == AuditEvent.objects.get(action="compliance.report_export_sent").payload_data["sha256"]


def test_pandas_reads_exactly_the_rows_with_comment_lines_skipped(world, signed_in):
    import pandas

    first = buy(world)
    more_trades(first, 12)
    data = body(signed_in(world.owner).get(EXPORT))
    frame = pandas.read_csv(io.BytesIO(data), comment="#", dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(TRADE_TRAIL_HEADER)
    assert frame.values.tolist() == csv_rows(data)[1:] and len(frame) == 13


def test_a_hostile_algo_filter_stays_on_its_comment_line(world, signed_in):
    """The view refuses control characters in the algo id, but not a Unicode line separator, a comma or
    a quote: none of them makes a line of its own or a formula."""
    buy(world)
    hostile = '\u2028# Generated: x\u2029,=1+1,"'
    response = signed_in(world.owner).get(EXPORT, {"algo": hostile})
    assert response.status_code == 200
    data = body(response)
    assert len(csv_preamble(data)) == 8 and csv_statement(data)["algo_id"] == "# Generated: x ,'=1+1,'\""
    assert len(data.decode().splitlines()) == 9  # the statement and the header: no row has this algo id
    assert csv_rows(data) == [list(TRADE_TRAIL_HEADER)]


TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")  # what UTF-8 can carry, NUL aside


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    value=st.text(TEXT, max_size=30),
    name=st.sampled_from(["algo_id", "account", "action"]),
    title=st.text(TEXT, max_size=12),
    cells=st.lists(st.text(TEXT, max_size=8), min_size=2, max_size=2),
)
def test_hostile_statement_text_cannot_add_a_line_outside_the_preamble(value, name, title, cells):
    """Whatever a filter, the title or the organisation hold (line feeds, carriage returns, Unicode line
    separators, ``#``, quotes, commas), the statement is one comment line each, and a reader that skips
    comment lines (line by line, csv after ``grep -v '^#'``, pandas) reads exactly the header and rows."""
    import pandas

    statement = _statement({"from": "2026-01-05", name: value}, title=title, organisation=value)
    rows = [cells, [value, "#" + value]]
    data = "".join(csv_lines(["a", "b"], rows, statement))
    lines = list(io.StringIO(data, newline=""))
    preamble = csv_preamble(data)
    assert len(preamble) == 5 and preamble[0].startswith("Report: ") and preamble[-1].startswith("Generated: ")
    assert [line.startswith("#") for line in lines].count(True) == 5 and all(line.startswith("#") for line in lines[:5])
    for text in preamble:
        assert text.splitlines() == [text] or text == ""
        for piece in text.split(",")[1:]:
            assert not piece.lstrip(" ").startswith(("=", "+", "-", "@", '"'))
    guarded = [[csv_cell(cell) for cell in row] for row in rows]
    expected = [[cell.replace("\n#", "\n'#").replace("\r#", "\r'#") for cell in row] for row in guarded]
    assert csv_rows(data) == [["a", "b"], *expected]
    frame = pandas.read_csv(
        io.BytesIO(data.encode()), comment="#", dtype=str, keep_default_na=False, skip_blank_lines=False
    )
    assert list(frame.columns) == ["a", "b"] and frame.values.tolist() == expected


def test_a_jobs_csv_states_its_report_filters_and_generation_time():
    out = io.BytesIO()
    statement = _statement({"from": "2026-01-05", "to": "2026-01-06", "account": "", "algo_id": "A\r\nB"})
    written = write_export(out, "csv", header=["x", "y"], rows=[(1, "=2"), (3, "#4")], statement=statement, chart=None)
    data = out.getvalue()
    assert written == 2
    assert csv_preamble(data) == [
        "Report: Trade trail",
        "Organisation: Acme",
        "from: 2026-01-05",
        "to: 2026-01-06",
        "account: any",
        "algo_id: A  B",
        "Generated: 2026-01-05 10:15:00 IST (2026-01-05T04:45:00Z)",
    ]
    assert data.decode().endswith('x,y\r\n1,\'=2\r\n"3","#4"\r\n')
    assert csv_rows(data) == [["x", "y"], ["1", "'=2"], ["3", "#4"]]
