from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import User
from marketdata.fanout import Payload
from marketdata.models import Instrument
from marketdata.quotes import Quote, set_quotes

pytestmark = pytest.mark.django_db


def test_the_watchlist_renders_the_cells_the_tick_socket_swaps(client):
    client.force_login(User.objects.create_user("trader", password="x-long-password-1"))
    reliance = Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="RELIANCE", exchange_token="2885", instrument_type="EQ"
    )
    quote = Quote(instrument_id=reliance.pk, ltp=Decimal("1560"), ts=datetime.now(UTC), close=Decimal("1500"))
    set_quotes([quote])
    page = client.get("/marketdata/watchlist/").content.decode()
    cells = f'<span id="q-{reliance.pk}-ltp" class="ltp up">1560</span>'
    assert cells in page and "60 (4.00%)" in page and "js/ticks.js" in page
    # The socket's fragment is the same partial with hx-swap-oob on each element.
    assert cells.replace('">1560', '" hx-swap-oob="true">1560') in Payload(quote).html


def test_the_watchlist_needs_a_login(client):
    assert client.get("/marketdata/watchlist/").status_code == 302
