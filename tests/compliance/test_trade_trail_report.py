"""The organisation's trade trail (Owner and Admin): its trades with their orders, filtered by account,
IST dates, algo id and source, paged newest first, and an audited, injection-safe CSV export."""

from __future__ import annotations

import io
from datetime import datetime, time, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.utils import timezone

from accounts.models import Membership, Organisation, Role
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance import views
from compliance.selectors import IST
from orders.models import Order, Trade
from orders.services import place_order
from tests.compliance.exporting import csv_rows
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
URL = "/orgs/acme/compliance/trades/"
EXPORT = URL + "export/"
HEADER = [
    "executed_at_ist",
    "client_code",
    "exchange",
    "tradingsymbol",
    "side",
    "quantity",
    "price",
    "value",
    "product",
    "broker_trade_id",
    "client_order_id",
    "algo_id",
    "source",
    "strategy",
    "placed_by",
]


def _buy(world, *, account=None, source="web", quantity=10, **kwargs) -> Trade:
    """A market buy that fills at once (ask 1000.05); return its trade."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=account or world.account,
        request=world.request(world.equity, order_type="MARKET", quantity=quantity, **kwargs),
        source=source,
    )
    return Trade.objects.get(order=order)


def _other_organisation():
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    return other, theirs


def _today() -> str:
    return timezone.localdate(timezone=IST).isoformat()


def _csv(response) -> list[list[str]]:
    return csv_rows(b"".join(response.streaming_content))


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_an_owner_or_admin_sees_the_organisations_trades_and_not_another_organisations(world, signed_in, who):
    ours = _buy(world, strategy="momentum")
    _, theirs_account = _other_organisation()
    theirs = _buy(world, account=theirs_account)
    response = signed_in(getattr(world, who)).get(URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="trade-{ours.pk}"' in html and f'id="trade-{theirs.pk}"' not in html
    order = ours.order
    for cell in (
        timezone.localtime(ours.executed_at, IST).strftime("%Y-%m-%d %H:%M:%S"),
        "<td>P1</td>",
        "<td>NSE</td>",
        "RELIANCE",
        "BUY",
        '<td class="num">10</td>',
        '<td class="num">1,000.05</td>',  # the price with its tick's places, Indian grouping
        '<td class="num">₹10,000.50</td>',  # value: 10 x 1000.05, in rupees
        "<td>MIS</td>",
        ours.broker_trade_id,
        str(order.client_order_id),
        "<td>GENERIC</td>",  # a manual order
        "<td>web</td>",
        "<td>momentum</td>",
        "<td>trader</td>",
    ):
        assert cell in html
    assert "1 trade." in html


@pytest.mark.parametrize(("who", "status"), [("trader", 403), ("viewer", 403), ("outsider", 404)])
def test_traders_viewers_and_outsiders_are_refused_and_nothing_is_exported_or_audited(
    world, signed_in, django_user_model, who, status
):
    _buy(world)
    if who == "outsider":  # the Owner of another organisation: as if acme did not exist
        user = django_user_model.objects.create_user("stranger")
        other, _ = _other_organisation()
        Membership.objects.create(user=user, organisation=other, role=Role.OWNER)
    else:
        user = getattr(world, who)
    client = signed_in(user)
    for url in (URL, EXPORT):
        response = client.get(url)
        assert response.status_code == status and not response.streaming
        assert "RELIANCE" not in response.content.decode()
    assert client.get("/orgs/nowhere/compliance/trades/").status_code == 404
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_the_account_filter_keeps_that_accounts_trades(world, signed_in):
    second = BrokerAccount.objects.create(organisation=world.org, label="Second", broker="paper", client_code="P2")
    first_trade, second_trade = _buy(world), _buy(world, account=second)
    client = signed_in(world.owner)
    html = client.get(URL).content.decode()
    assert f'id="trade-{first_trade.pk}"' in html and f'id="trade-{second_trade.pk}"' in html
    html = client.get(URL, {"account": second.pk}).content.decode()
    assert f'id="trade-{second_trade.pk}"' in html and f'id="trade-{first_trade.pk}"' not in html
    assert f'<option value="{second.pk}" selected>P2 · Second</option>' in html


def test_the_dates_are_ist_days_and_default_to_today(world, signed_in):
    late_yesterday, today_trade = _buy(world), _buy(world)
    today = timezone.localdate(timezone=IST)
    yesterday = today - timedelta(days=1)
    # 23:59:59 IST yesterday is 18:29:59 UTC: yesterday in IST, whatever the UTC date says.
    Trade.objects.filter(pk=late_yesterday.pk).update(
        executed_at=datetime.combine(today, time.min, tzinfo=IST) - timedelta(seconds=1)
    )
    client = signed_in(world.owner)
    html = client.get(URL).content.decode()
    assert f'id="trade-{today_trade.pk}"' in html and f'id="trade-{late_yesterday.pk}"' not in html
    assert f'name="from" type="date" value="{today.isoformat()}"' in html
    html = client.get(URL, {"from": yesterday.isoformat(), "to": yesterday.isoformat()}).content.decode()
    assert f'id="trade-{late_yesterday.pk}"' in html and f'id="trade-{today_trade.pk}"' not in html
    assert f"{yesterday.isoformat()} 23:59:59" in html
    html = client.get(URL, {"from": yesterday.isoformat(), "to": today.isoformat()}).content.decode()
    assert html.index(f'id="trade-{today_trade.pk}"') < html.index(f'id="trade-{late_yesterday.pk}"')  # newest first


def test_the_algo_id_filter_matches_the_orders_algo_id_and_generic_means_manual(world, signed_in):
    algo, manual = _buy(world, algo_id="NSE-ALGO-42"), _buy(world)
    client = signed_in(world.owner)
    html = client.get(URL, {"algo": "NSE-ALGO-42"}).content.decode()
    assert f'id="trade-{algo.pk}"' in html and f'id="trade-{manual.pk}"' not in html
    html = client.get(URL, {"algo": "GENERIC"}).content.decode()
    assert f'id="trade-{manual.pk}"' in html and f'id="trade-{algo.pk}"' not in html


def test_the_source_filter_matches_the_orders_source(world, signed_in):
    api, web = _buy(world, source="api"), _buy(world, source="web")
    html = signed_in(world.owner).get(URL, {"source": "api"}).content.decode()
    assert f'id="trade-{api.pk}"' in html and f'id="trade-{web.pk}"' not in html
    assert '<option value="api" selected>API</option>' in html


def test_trades_are_paged_newest_first(world, signed_in, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    oldest, middle, newest = _buy(world), _buy(world), _buy(world)
    client = signed_in(world.owner)
    html = client.get(URL).content.decode()
    assert f'id="trade-{newest.pk}"' in html and f'id="trade-{middle.pk}"' in html
    assert f'id="trade-{oldest.pk}"' not in html and "3 trades, page 1 of 2." in html
    assert f'href="?from={_today()}&amp;to={_today()}&amp;page=2"' in html
    html = client.get(URL, {"page": "2"}, **HX).content.decode()
    assert f'id="trade-{oldest.pk}"' in html and f'id="trade-{newest.pk}"' not in html
    assert client.get(URL, {"page": "many"}).status_code == 200  # a bad page number is the first page


def test_the_filter_form_swaps_only_the_report_for_htmx(world, signed_in):
    trade = _buy(world)
    response = signed_in(world.admin).get(URL, {"source": "web"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and html.lstrip().startswith('<div id="report">')
    assert f'id="trade-{trade.pk}"' in html
    assert f'href="/orgs/acme/compliance/trades/export/?from={_today()}&amp;to={_today()}&amp;source=web"' in html


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"from": "31/01/2025"}, "from", "date_invalid"),
        ({"to": "2025-13-01"}, "to", "date_invalid"),
        ({"from": "2025-03-02", "to": "2025-03-01"}, "from", "date_range_reversed"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "to", "date_range_too_long"),
        ({"account": "P1"}, "account", "account_not_found"),
        ({"source": "telegram"}, "source", "source_unknown"),
        ({"algo": "A" * 41}, "algo", "algo_id_too_long"),
    ],
)
def test_a_bad_filter_is_a_422_naming_the_field_and_exports_nothing(world, signed_in, params, field, code):
    _buy(world)
    client = signed_in(world.owner)
    for url, headers in ((URL, HX), (URL, {}), (EXPORT, {})):
        response = client.get(url, params, **headers)
        html = response.content.decode()
        assert response.status_code == 422 and not response.streaming
        assert f'id="filter-{field}-error" data-code="{code}"' in html and f'role="alert" data-code="{code}"' in html
        assert 'id="trade-trail"' not in html and 'id="report-export"' not in html
        assert ("<html" in html) == (headers == {})
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_an_account_of_another_organisation_is_refused_by_name(world, signed_in):
    _, theirs = _other_organisation()
    _buy(world, account=theirs)
    response = signed_in(world.owner).get(EXPORT, {"account": theirs.pk})
    assert response.status_code == 422
    assert "Account must be one of the organisation&#x27;s broker accounts." in response.content.decode()
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_the_csv_export_has_a_header_every_trade_a_filename_and_is_audited(world, signed_in):
    first = _buy(world, source="api", algo_id="NSE-ALGO-42", strategy="momentum")
    second = _buy(world, quantity=3)
    _, theirs = _other_organisation()
    _buy(world, account=theirs)
    response = signed_in(world.owner).get(EXPORT, REMOTE_ADDR="10.9.8.7")
    today = _today()
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="acme-trade-trail-{today}-to-{today}.csv"'
    rows = _csv(response)
    executed = timezone.localtime(first.executed_at, IST).strftime("%Y-%m-%d %H:%M:%S")
    assert rows[0] == HEADER
    assert [row[9] for row in rows[1:]] == [second.broker_trade_id, first.broker_trade_id]  # newest first
    assert rows[2] == [
        executed,
        "P1",
        "NSE",
        "RELIANCE",
        "BUY",
        "10",
        "1000.0500",
        "10000.5000",
        "MIS",
        first.broker_trade_id,
        str(first.order.client_order_id),
        "NSE-ALGO-42",
        "api",
        "momentum",
        "trader",
    ]
    event = AuditEvent.objects.get(action="compliance.report_exported")
    assert event.actor == f"user:{world.owner.pk}" and event.ip == "10.9.8.7"
    assert event.payload_data == {
        "report": "trade_trail",
        "format": "csv",
        "filters": {"from": today, "to": today, "account": "", "algo_id": "", "source": ""},
        "rows": 2,
    }


def test_the_export_keeps_the_filters_and_audits_them(world, signed_in):
    kept = _buy(world, source="api")
    _buy(world, source="web")
    response = signed_in(world.admin).get(EXPORT, {"account": world.account.pk, "source": "api"})
    rows = _csv(response)
    assert len(rows) == 2 and rows[1][9] == kept.broker_trade_id
    payload = AuditEvent.objects.get(action="compliance.report_exported").payload_data
    assert payload["filters"]["account"] == "P1" and payload["filters"]["source"] == "api" and payload["rows"] == 1


def test_an_empty_export_is_the_header_alone_and_still_audited(world, signed_in):
    rows = _csv(signed_in(world.owner).get(EXPORT))
    assert rows == [HEADER]
    assert AuditEvent.objects.get(action="compliance.report_exported").payload_data["rows"] == 0


def test_a_cell_a_spreadsheet_would_run_is_prefixed_with_a_quote(world, signed_in):
    trade = _buy(world)
    Order.objects.filter(pk=trade.order_id).update(strategy='=HYPERLINK("http://x")', algo_id="@SUM(A1)", tag="")
    row = _csv(signed_in(world.owner).get(EXPORT))[1]
    assert row[11] == "'@SUM(A1)" and row[13] == '\'=HYPERLINK("http://x")'
    for text in ("=1+2", "+1", "-1", "@A1", "\tx", "\rx"):
        assert views.csv_cell(text) == "'" + text
    for value in ("A=1", "1000.05", 10, None):
        assert views.csv_cell(value) == ("" if value is None else str(value))


def test_under_asgi_the_export_streams_an_async_iterator(world):
    """Django reads a sync iterator into a list before serving it over ASGI; the export hands it an
    async one, whose rows are read in the request's thread."""
    trade = _buy(world)
    client = login_with_otp(AsyncClient(), world.owner)

    async def export():
        response = await client.get(EXPORT)
        assert response.is_async
        return response.status_code, b"".join([chunk async for chunk in response.streaming_content])

    status, body = async_to_sync(export)()
    rows = csv_rows(body)
    assert status == 200 and rows[0] == HEADER and rows[1][9] == trade.broker_trade_id
    assert AuditEvent.objects.filter(action="compliance.report_exported").count() == 1


def test_the_organisation_pages_link_to_the_reports_and_the_reports_to_each_other(world, signed_in):
    client = signed_in(world.owner)
    for page in ("/orgs/acme/limits/", "/orgs/acme/members/"):
        assert 'href="/orgs/acme/compliance/"' in client.get(page).content.decode()
    for page in ("/orgs/acme/compliance/", URL, "/orgs/acme/compliance/order-to-trade/"):
        html = client.get(page).content.decode()
        assert 'href="/orgs/acme/compliance/trades/"' in html
        assert 'href="/orgs/acme/compliance/order-to-trade/"' in html


def test_the_xlsx_export_has_the_same_rows_as_numbers_and_text_guarded_and_is_audited(world, signed_in):
    from openpyxl import load_workbook

    trade = _buy(world, algo_id="=HYPERLINK(1)")
    response = signed_in(world.owner).get(EXPORT + "?format=xlsx")
    today = _today()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f'filename="acme-trade-trail-{today}-to-{today}.xlsx"' in response["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADER and len(rows) == 2
    row = dict(zip(HEADER, rows[1], strict=True))
    assert row["broker_trade_id"] == trade.broker_trade_id and row["quantity"] == 10
    assert row["price"] == pytest.approx(1000.05) and row["algo_id"] == "'=HYPERLINK(1)"  # text, not a formula
    event = AuditEvent.objects.get(action="compliance.report_exported")
    assert event.payload_data["format"] == "xlsx" and event.payload_data["rows"] == 1


def test_an_unknown_export_format_is_a_422_and_nothing_is_exported_or_audited(world, signed_in):
    _buy(world)
    response = signed_in(world.owner).get(EXPORT + "?format=docx")
    assert response.status_code == 422 and b'data-code="format_unknown"' in response.content
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()
