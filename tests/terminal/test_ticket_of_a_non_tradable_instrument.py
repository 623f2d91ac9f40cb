"""An index is watched and charted, not traded: its ticket explains that instead of offering a form, and
its watchlist row has no B/S."""

import pytest

from marketdata.models import Instrument
from terminal.services.watchlists import watchlist_add_instrument, watchlist_ensure_default
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def index(world):  # noqa: F811
    return Instrument.objects.create(
        exchange="NSE", segment="INDICES", tradingsymbol="NIFTY 50", exchange_token="26000", instrument_type="INDEX"
    )


@pytest.fixture
def trader_client(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    return client


def _ticket(client, world, instrument, **headers):  # noqa: F811
    return client.get(f"/trading/{world.account.pk}/ticket/?instrument={instrument.pk}&side=BUY", **headers)


@pytest.mark.parametrize("headers", [{}, HX], ids=["page", "htmx"])
def test_the_ticket_of_an_index_renders_the_reason_and_no_order_form(trader_client, world, index, headers):  # noqa: F811
    response = _ticket(trader_client, world, index, **headers)
    assert response.status_code == 422
    page = response.content.decode()
    assert 'data-code="instrument_not_tradable"' in page and 'role="alert"' in page
    assert "NIFTY 50 is an index" in page
    # No form that places an order (the full page keeps the top bar's sign-out form).
    assert f'action="/trading/{world.account.pk}/orders/"' not in page
    assert 'id="ticket-form"' not in page and 'name="lots"' not in page and "Place buy order" not in page


def test_the_ticket_of_a_tradable_instrument_is_still_a_form(trader_client, world):  # noqa: F811
    page = _ticket(trader_client, world, world.equity, **HX).content.decode()
    assert 'id="ticket-form"' in page and 'name="lots"' in page


def test_the_watchlist_offers_b_and_s_on_a_stock_and_not_on_an_index(trader_client, world, index):  # noqa: F811
    watchlist = watchlist_ensure_default(user=world.trader)
    for instrument in (world.equity, index):
        watchlist_add_instrument(user=world.trader, watchlist_id=watchlist.pk, instrument_id=instrument.pk)
    page = trader_client.get(f"/?account={world.account.pk}").content.decode()
    assert 'aria-label="Buy RELIANCE"' in page and 'aria-label="Sell RELIANCE"' in page
    assert 'aria-label="Buy NIFTY 50"' not in page and 'aria-label="Sell NIFTY 50"' not in page
    assert 'aria-label="Remove NIFTY 50"' in page
    assert 'title="NIFTY 50"' in page
