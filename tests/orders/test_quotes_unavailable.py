"""An order placed while the quote store (Redis) cannot be reached is refused with a 503 naming it,
audited, and nothing is written or sent: never a 500, never judged without the market's price."""

from __future__ import annotations

import socket

import pytest

from audit.models import AuditEvent
from marketdata import quotes
from marketdata.errors import QuotesUnavailable
from orders.models import Order
from orders.services import place_order
from paper.models import PaperOrder
from tests.trading_world import World, _fresh_trading_state  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable_quotes(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    monkeypatch.setattr(quotes, "_store", quotes._RedisStore(url))


def test_an_order_is_refused_with_503_while_the_quote_store_is_unreachable(unreachable_quotes):
    world = World()
    with pytest.raises(QuotesUnavailable) as error:
        place_order(actor=world.trader, account=world.account, request=world.request(world.equity), source="api")
    assert (error.value.status, error.value.code) == (503, "quotes_unavailable")
    assert not Order.objects.exists() and not PaperOrder.objects.exists()
    refusal = AuditEvent.objects.get(action="rms.rejected")
    assert refusal.payload_data["rule"] == "quotes_unavailable"


def test_the_paper_exchange_refuses_an_order_it_cannot_price_while_the_quote_store_is_unreachable(
    unreachable_quotes,
):
    """Redis lost between the placement's read of the quote and the exchange's: rejected, not unknown."""
    from decimal import Decimal

    from brokers.adapters.base import BrokerOrderRequest, BrokerRejected
    from brokers.adapters.registry import adapter_for

    world = World()
    request = BrokerOrderRequest(
        tag="tag1",
        instrument_id=world.equity.pk,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        quantity=5,
        order_type="LIMIT",
        product="MIS",
        validity="DAY",
        instrument_type="EQ",
        tick_size=Decimal("0.05"),
        price=Decimal("990"),
    )
    with pytest.raises(BrokerRejected) as error:
        adapter_for(world.account).place_order(request)
    assert error.value.code == "paper_market_unavailable"
    assert not PaperOrder.objects.exists()
