"""Market depth: the panel under the ticket and on a watchlist row, and its live updates over the depth socket."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from accounts.models import User
from marketdata import fanout
from marketdata.consumers import TickConsumer
from marketdata.depth import MAX_LEVELS, depth_context
from marketdata.models import Instrument
from marketdata.quotes import DepthLevel, Quote, set_quotes
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}


def _deep_quote(instrument_id: int, ltp: str, levels: int = 5) -> Quote:
    ltp_d = Decimal(ltp)
    return Quote(
        instrument_id=instrument_id,
        ltp=ltp_d,
        ts=datetime.now(UTC),
        bid=ltp_d - Decimal("0.05"),
        ask=ltp_d + Decimal("0.05"),
        bids=tuple(DepthLevel(ltp_d - Decimal("0.05") * (i + 1), 100 * (i + 1), i + 1) for i in range(levels)),
        asks=tuple(DepthLevel(ltp_d + Decimal("0.05") * (i + 1), 50 * (i + 1), i + 2) for i in range(levels)),
    )


def test_the_levels_are_best_first_and_totalled():
    quote = _deep_quote(1, "100", levels=5)
    shuffled = Quote(**{**{f: getattr(quote, f) for f in quote.__slots__}, "bids": quote.bids[::-1]})
    context = depth_context(1, shuffled)
    assert [bid.price for bid, _ in context["levels"]] == [Decimal("99.95") - Decimal("0.05") * i for i in range(5)]
    assert context["bid_total"] == 1500 and context["ask_total"] == 750


def test_twenty_levels_show_where_the_feed_gives_them_and_no_more():
    assert len(depth_context(1, _deep_quote(1, "100", levels=25))["levels"]) == MAX_LEVELS == 20


@pytest.fixture
def trader_client(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    return client


@pytest.mark.django_db
def test_the_depth_partial_shows_five_levels(trader_client, world):  # noqa: F811
    set_quotes([_deep_quote(world.equity.pk, "1000")])
    response = trader_client.get(f"/marketdata/depth/{world.equity.pk}/", **HX)
    html = response.content.decode()
    assert response.status_code == 200 and html.count('class="depth-level"') == 5
    assert f'data-depth="{world.equity.pk}"' in html and "999.95" in html and "1,000.05" in html


@pytest.mark.django_db
def test_the_ticket_shows_the_depth_under_the_form(trader_client, world):  # noqa: F811
    set_quotes([_deep_quote(world.equity.pk, "1000")])
    html = trader_client.get(f"/trading/{world.account.pk}/ticket/?instrument={world.equity.pk}", **HX).content.decode()
    assert html.index('id="ticket-form"') < html.index(f'data-depth="{world.equity.pk}"')


@pytest.mark.django_db
@pytest.mark.parametrize("ref", ["0", "99999999", "99999999999999999999999999", "x", "1%00"])
def test_an_unknown_or_malformed_instrument_is_refused_without_a_500(trader_client, ref):
    assert trader_client.get(f"/marketdata/depth/{ref}/", **HX).status_code in {400, 404}


@pytest.mark.django_db
def test_depth_needs_a_sign_in(client, world):  # noqa: F811
    assert client.get(f"/marketdata/depth/{world.equity.pk}/").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_depth_socket_sends_the_panel_of_each_changed_instrument(settings):
    settings.MARKETDATA_FRAME_MS = 3_600_000  # frames only when the test cuts one
    user = User.objects.create_user("depth-trader", password="x-long-password-1")
    instrument = Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="DEPTHCO", exchange_token="77", instrument_type="EQ"
    )

    async def scenario():
        socket = WebsocketCommunicator(TickConsumer.as_asgi(), "/ws/ticks/?format=depth")
        socket.scope["user"] = user
        connected, _ = await socket.connect()
        assert connected
        await socket.send_json_to({"action": "subscribe", "instruments": [instrument.pk]})
        assert (await socket.receive_json_from())["type"] == "subscribed"
        quote = _deep_quote(instrument.pk, "250")
        set_quotes([quote])  # the publisher stores the full quote before it fans the batch out
        fanout.hub().offer(
            [Quote(instrument_id=instrument.pk, ltp=quote.ltp, ts=quote.ts)]
        )  # the channel's row: no depth
        fanout.hub().frame()
        html = await socket.receive_from()
        assert f'data-depth="{instrument.pk}"' in html and html.count('class="depth-level"') == 5
        assert "249.95" in html and "250.05" in html
        await socket.disconnect()

    async_to_sync(scenario)()
