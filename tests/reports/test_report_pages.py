"""The reports' pages, exports and API: the hand-computed day (test_pnl_report.py) as the page, CSV, XLSX and
JSON show it; refused filters (422, each field named); other users' accounts (404)."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from tests.reports.recorded import record
from tests.reports.test_pnl_report import hand_computed_day
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}
DAY = "from=2026-03-02&to=2026-03-02"
PNL_HEADER = [
    "exchange",
    "tradingsymbol",
    "product",
    "segment",
    "buy_quantity",
    "buy_value",
    "sell_quantity",
    "sell_value",
    "realised",
    "open_quantity",
    "average_price",
    "ltp",
    "unrealised",
    "brokerage",
    "stt",
    "exchange",
    "sebi",
    "stamp",
    "gst",
    "charges",
    "net",
]
PNL_ROWS = [
    ["NFO", "NIFTYFUT", "NRML", "futures", "75", "1650000.00", "0", "0.00", "0.00", "75", "22000.0000", "22100",
     "7500.00", "20.00", "0.00", "28.55", "1.65", "33.00", "9.04", "92.24", "7407.76"],
    ["NSE", "RELIANCE", "MIS", "equity_intraday", "10", "10000.00", "10", "10100.00", "100.00", "0", "", "",
     "0.00", "6.03", "2.53", "0.60", "0.02", "0.30", "1.20", "10.68", "89.32"],
    ["TOTAL", "", "", "", "85", "1660000.00", "10", "10100.00", "100.00", "", "", "", "7500.00", "26.03", "2.53",
     "29.15", "1.67", "33.30", "10.24", "102.92", "7497.08"],
]  # fmt: skip


@pytest.fixture
def signed_in(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    return client


def _number(text: str):
    """An expected CSV cell as the workbook holds it: a number where it is one, None where empty."""
    if text == "":
        return None
    try:
        return Decimal(text)
    except ArithmeticError:
        return text


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.django_db
def test_the_pnl_page_shows_the_hand_computed_totals_and_charges(signed_in, world):  # noqa: F811
    hand_computed_day(world)
    page = _text(signed_in.get(f"/reports/{world.account.pk}/pnl/?{DAY}"))
    assert re.search(r'id="pnl-realised" class="profit">₹100\.00<', page)
    assert re.search(r'id="pnl-unrealised" class="profit">₹7,500\.00<', page)
    assert re.search(r'id="pnl-charges" class="loss">₹102\.92<', page)
    assert re.search(r'id="pnl-net" class="profit">₹7,497\.08<', page)
    assert re.search(r'data-part="stt"><dt>STT</dt><dd class="num">₹2\.53<', page)
    assert 'id="pnl-day-2026-03-02"' in page


@pytest.mark.django_db
def test_the_pnl_exports_hold_exactly_the_symbols_and_the_total(signed_in, world):  # noqa: F811
    hand_computed_day(world)
    response = signed_in.get(f"/reports/{world.account.pk}/pnl/export/?{DAY}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="p1-pnl-2026-03-02-to-2026-03-02.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [PNL_HEADER, *PNL_ROWS]
    response = signed_in.get(f"/reports/{world.account.pk}/pnl/export/?{DAY}&format=xlsx")
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    cells = [
        [Decimal(str(v)) if isinstance(v, int | float) else v for v in row] for row in sheet.iter_rows(values_only=True)
    ]
    assert cells == [PNL_HEADER, *[[_number(v) for v in row] for row in PNL_ROWS]]  # numbers stay numbers


@pytest.mark.django_db
def test_the_tradebook_filters_by_symbol_side_and_segment_and_exports_its_rows(signed_in, world):  # noqa: F811
    hand_computed_day(world)
    base = f"/reports/{world.account.pk}/tradebook/"
    page = _text(signed_in.get(f"{base}?{DAY}&symbol=relia&side=SELL"))
    assert "1 trade." in page and "NSE:RELIANCE" in page and "NIFTYFUT" not in page
    page = _text(signed_in.get(f"{base}?{DAY}&segment=futures"))
    assert "1 trade." in page and "NFO:NIFTYFUT" in page
    response = signed_in.get(f"{base}export/?{DAY}&segment=equity")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row[:7] for row in rows] == [
        ["executed_at_ist", "exchange", "tradingsymbol", "side", "quantity", "price", "value"],
        ["2026-03-02 10:05:00", "NSE", "RELIANCE", "SELL", "10", "1010.0000", "10100.0000"],
        ["2026-03-02 09:20:00", "NSE", "RELIANCE", "BUY", "10", "1000.0000", "10000.0000"],
    ]


@pytest.mark.django_db
def test_the_tax_page_and_export_show_the_years_lines(signed_in, world):  # noqa: F811
    record(world.account, world.equity, "BUY", 10, 1500, "2024-01-10 10:00", product="CNC")
    record(world.account, world.equity, "SELL", 10, 1800, "2025-01-15 10:00", product="CNC")
    page = _text(signed_in.get(f"/reports/{world.account.pk}/tax/?fy=2024-25"))
    assert re.search(r'id="tax-ltcg">₹3,000\.00<', page)
    response = signed_in.get(f"/reports/{world.account.pk}/tax/export/?fy=2024&format=xlsx")
    assert response["Content-Disposition"].endswith('filename="p1-tax-fy-2024-25.xlsx"')
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    assert [list(row) for row in sheet.iter_rows(values_only=True)][1] == [
        "ltcg", "NSE", "RELIANCE", "2024-01-10", "2025-01-15", 10, 15000, 18000, 3000,
    ]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("pnl/?from=2026-13-01", "from", "date_invalid"),
        ("pnl/?from=2026-03-05&to=2026-03-01", "from", "date_range_reversed"),
        ("pnl/?from=2024-01-01&to=2026-01-01", "to", "date_range_too_long"),
        ("pnl/?to=9999-12-31", "to", "date_out_of_range"),
        ("pnl/export/?format=pdf", "format", "format_unknown"),
        ("tradebook/?symbol=A%07B", "symbol", "filter_invalid"),
        ("tradebook/?symbol=" + "X" * 65, "symbol", "filter_too_long"),
        ("tradebook/?side=HOLD", "side", "side_unknown"),
        ("tax/?fy=2024-26", "fy", "financial_year_invalid"),
        ("tax/export/?fy=1999", "fy", "financial_year_out_of_range"),
    ],
)
def test_refused_filters_answer_422_naming_the_field(signed_in, world, query, field, code):  # noqa: F811
    response = signed_in.get(f"/reports/{world.account.pk}/{query}")
    assert response.status_code == 422
    assert f'id="filter-{field}-error" data-code="{code}"' in response.content.decode()


@pytest.mark.django_db
def test_an_account_the_user_cannot_see_is_not_found_on_every_report(client, world, otp_login):  # noqa: F811
    from accounts.models import User

    otp_login(client, User.objects.create_user("stranger"))
    for path in ("pnl/", "pnl/export/", "tradebook/", "tradebook/export/", "tax/", "tax/export/"):
        assert client.get(f"/reports/{world.account.pk}/{path}").status_code == 404
    assert client.get(f"/holdings/{world.account.pk}/").status_code == 404
    assert client.get(f"/api/v1/accounts/{world.account.pk}/pnl", **HX).status_code == 404


@pytest.mark.django_db
def test_the_api_gives_the_pnl_tradebook_and_tax_pnl(signed_in, world):  # noqa: F811
    hand_computed_day(world)
    pnl = signed_in.get(f"/api/v1/accounts/{world.account.pk}/pnl?{DAY}").json()
    assert (pnl["totals"]["realised"], pnl["totals"]["charges"]["total"], pnl["totals"]["net"]) == (
        "100.0000",
        "102.92",
        "7497.0800",
    )
    book = signed_in.get(f"/api/v1/accounts/{world.account.pk}/tradebook?{DAY}&product=nrml").json()
    assert book["count"] == 1 and book["trades"][0]["tradingsymbol"] == "NIFTYFUT"
    tax = signed_in.get(f"/api/v1/accounts/{world.account.pk}/tax-pnl?fy=2025-26").json()
    assert tax["financial_year"] == "2025-26"  # 2 March 2026 is in it
    assert [(line["category"], line["quantity"], Decimal(line["pnl"])) for line in tax["lines"]] == [
        ("intraday", 10, Decimal(100))
    ]
    refused = signed_in.get(f"/api/v1/accounts/{world.account.pk}/pnl?from=yesterday")
    assert refused.status_code == 422
    assert refused.json()["extra"]["fields"]["from"]["code"] == "date_invalid"
