"""Holdings (orders/reports/holdings.py): the paper exchange's delivery holdings through the broker
contract, valued at the last quote, on the page and through the API; a broker that cannot answer is shown,
not a 500."""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from django.utils import timezone

from brokers.adapters.base import BrokerUnavailable
from marketdata.quotes import Quote, set_quotes
from orders.reports.holdings import holdings_get
from orders.services import place_order
from tests.trading_world import _fresh_trading_state, world  # noqa: F401


def _buy(world, quantity, ltp):  # noqa: F811
    world.quote(world.equity, ltp, bid=ltp - 0.05, ask=ltp + 0.05)
    request = world.request(world.equity, order_type="MARKET", product="CNC", quantity=quantity)
    place_order(actor=world.trader, account=world.account, request=request, source="api")


def _close(world, ltp, close):  # noqa: F811
    set_quotes([Quote(instrument_id=world.equity.pk, ltp=D(ltp), ts=timezone.now(), close=D(close))])


@pytest.mark.django_db
def test_holdings_are_valued_at_the_last_quote_with_the_days_change_from_the_previous_close(world):  # noqa: F811
    _buy(world, 10, 1000)  # fills at the ask, 1000.05
    _buy(world, 10, 1010)  # 1010.05: average 1005.05
    _close(world, "1020", "1015")
    [row] = holdings_get(account=world.account).rows
    assert (row.quantity, row.t1_quantity, row.average_price, row.ltp, row.close) == (
        20,
        20,  # bought today: not yet settled (T+1)
        D("1005.0500"),
        D("1020"),
        D("1015"),
    )
    assert (row.invested, row.value, row.pnl, row.pnl_percent) == (
        D("20101.0000"),
        D("20400"),
        D("299.0000"),
        D("1.49"),
    )
    assert (row.day_change, row.day_change_percent) == (D("100"), D("0.49"))


@pytest.mark.django_db
def test_the_holdings_page_and_api_show_the_same_figures(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    _buy(world, 10, 1000)
    _close(world, "1020", "1015")
    page = re.sub(r"\s+", " ", client.get(f"/holdings/{world.account.pk}/").content.decode())
    assert re.search(rf'<tr id="holding-{world.equity.pk}" class="holding-row"', page)
    assert re.search(r'id="holdings-pnl" class="profit">₹199\.50', page)  # 10 x (1020 - 1000.05)
    assert re.search(r'id="holdings-day" class="profit">₹50\.00<', page)
    assert f'data-instruments="{world.equity.pk}"' in page
    panel = client.get(f"/holdings/{world.account.pk}/panel/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and panel.content.decode().lstrip().startswith('<section id="holdings"')
    [holding] = client.get(f"/api/v1/accounts/{world.account.pk}/holdings").json()
    assert (holding["tradingsymbol"], holding["quantity"], D(holding["pnl"]), D(holding["day_change"])) == (
        "RELIANCE",
        10,
        D("199.5"),
        D("50"),
    )


@pytest.mark.django_db
def test_a_broker_that_cannot_list_holdings_is_shown_on_the_page_and_refused_by_the_api(
    client,
    world,  # noqa: F811
    otp_login,
    monkeypatch,
):
    from paper.adapter import PaperAdapter

    def unreachable(self):
        raise BrokerUnavailable("The broker did not answer in time.", code="broker_timeout")

    monkeypatch.setattr(PaperAdapter, "holdings", unreachable)
    otp_login(client, world.trader)
    page = client.get(f"/holdings/{world.account.pk}/")
    assert page.status_code == 200 and 'data-code="broker_timeout"' in page.content.decode()
    refused = client.get(f"/api/v1/accounts/{world.account.pk}/holdings")
    assert refused.status_code == 503 and refused.json()["code"] == "broker_timeout"
