from dataclasses import replace
from decimal import Decimal

import pytest

from brokers.adapters.base import BrokerHolding
from brokers.adapters.registry import adapter_for
from brokers.models import BrokerAccount
from marketdata.quotes import Quote
from orders.models import Position, Trade
from orders.services import place_order
from orders.states import Status
from paper.matching import match, protected_limit
from paper.models import PaperOrder

pytestmark = pytest.mark.django_db
D = Decimal


def test_market_protection_uses_the_exchange_numbers_for_futures_and_options():
    assert protected_limit(side="BUY", instrument_type="FUT", ltp=D("200"), tick=D("0.05")) == D("210.00")
    assert protected_limit(side="SELL", instrument_type="FUT", ltp=D("200"), tick=D("0.05")) == D("190.00")
    # at or below 50 the futures floor of 2.5 applies
    assert protected_limit(side="BUY", instrument_type="FUT", ltp=D("40"), tick=D("0.05")) == D("42.50")
    # options: 20 % of LTP with a minimum of 10
    assert protected_limit(side="BUY", instrument_type="CE", ltp=D("100"), tick=D("0.05")) == D("120.00")
    assert protected_limit(side="BUY", instrument_type="PE", ltp=D("20"), tick=D("0.05")) == D("30.00")
    assert protected_limit(side="SELL", instrument_type="PE", ltp=D("5"), tick=D("0.05")) == D("0.05")


def test_a_fill_consumes_depth_level_by_level_up_to_the_limit():
    quote = Quote(1, D("100"), ts=None, asks=_levels((D("100.05"), 5), (D("100.10"), 5), (D("100.50"), 50)))
    result = match(side="BUY", remaining=30, limit=D("100.10"), quote=quote, tick=D("0.05"))
    assert result.fills == [(5, D("100.05")), (5, D("100.10"))]


def test_slippage_moves_a_market_fill_against_the_order_but_never_past_the_protection():
    quote = Quote(1, D("100"), ts=None, asks=_levels((D("100.00"), 10)))
    assert match(side="BUY", remaining=10, limit=D("102"), quote=quote, tick=D("0.05"), slippage_bps=10).fills == [
        (10, D("100.10"))
    ]
    assert match(side="BUY", remaining=10, limit=D("100.05"), quote=quote, tick=D("0.05"), slippage_bps=50).fills == [
        (10, D("100.05"))
    ]


def _levels(*pairs):
    from marketdata.quotes import DepthLevel

    return tuple(DepthLevel(p, q) for p, q in pairs)


def test_a_market_order_larger_than_the_depth_fills_partially_and_rests_at_its_protected_price(world):
    world.quote(world.equity, 1000, asks=[(1000.05, 4), (1000.10, 3)], bids=[(999.95, 10)])
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    assert order.status == Status.PARTIALLY_FILLED and order.filled_quantity == 7
    assert PaperOrder.objects.get().price == D("1005.00")  # 1000 + 0.5 %
    world.quote(world.equity, 1001, asks=[(1001.00, 10)])
    order.refresh_from_db()
    assert order.status == Status.FILLED and order.filled_quantity == 10
    assert sum(t.quantity for t in Trade.objects.filter(order=order)) == 10


def test_an_ioc_order_cancels_what_does_not_fill_at_once(world):
    world.quote(world.equity, 1000, asks=[(1000.05, 4)], bids=[(999.95, 10)])
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=D("1000.05"), validity="IOC"),
        source="api",
    )
    assert order.status == Status.CANCELLED and order.filled_quantity == 4
    assert Position.objects.get(account=world.account).net_quantity == 4


def test_a_stop_loss_sell_waits_for_its_trigger_then_fills_as_a_limit(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    stop = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, side="SELL", order_type="SL", price=D("979"), trigger_price=D("980")),
        source="api",
    )
    assert stop.status == Status.TRIGGER_PENDING
    world.quote(world.equity, 985, bid=984.95, ask=985.05)
    stop.refresh_from_db()
    assert stop.status == Status.TRIGGER_PENDING
    world.quote(world.equity, 979.50, bid=979.45, ask=979.55)
    stop.refresh_from_db()
    assert stop.status == Status.FILLED and stop.average_price == D("979.45")
    position = Position.objects.get(account=world.account)
    assert position.net_quantity == 0 and position.realised_pnl == D("-206.0000")  # (979.45 - 1000.05) x 10


def test_a_stop_loss_market_buy_triggers_and_fills_at_the_market(world):
    world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
    stop = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.future, quantity=75, order_type="SL-M", product="NRML", trigger_price=D("20100")),
        source="api",
    )
    assert stop.status == Status.TRIGGER_PENDING
    world.quote(world.future, 20100.5, bid=20100.4, ask=20100.6)
    stop.refresh_from_db()
    assert stop.status == Status.FILLED and stop.average_price == D("20100.6")


def test_a_market_order_without_any_quote_is_refused_before_it_is_recorded(world):
    from rms.errors import RiskRejected

    with pytest.raises(RiskRejected) as error:
        place_order(
            actor=world.trader,
            account=world.account,
            request=world.request(world.equity, order_type="MARKET"),
            source="api",
        )
    assert error.value.code == "no_market_price"


def test_the_paper_exchange_treats_a_repeated_order_tag_as_the_same_order(world):
    from brokers.adapters.base import BrokerOrderRequest
    from brokers.adapters.registry import adapter_for

    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
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
        tick_size=D("0.05"),
        price=D("990"),
    )
    first = adapter_for(world.account).place_order(request)
    second = adapter_for(world.account).place_order(request)
    assert first.broker_order_id == second.broker_order_id and PaperOrder.objects.count() == 1


def test_the_paper_exchange_holds_each_accounts_delivery_buys_less_its_delivery_sells(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    buy = world.request(world.equity, order_type="MARKET", product="CNC")
    place_order(actor=world.trader, account=world.account, request=buy, source="api")
    place_order(actor=world.trader, account=world.account, request=replace(buy, product="MIS"), source="api")
    sell = world.request(world.equity, side="SELL", quantity=4, order_type="MARKET", product="CNC")
    place_order(actor=world.trader, account=world.account, request=sell, source="api")
    other = BrokerAccount.objects.create(organisation=world.org, label="Other", broker="paper", client_code="P2")
    assert adapter_for(world.account).holdings() == [
        BrokerHolding(instrument_id=world.equity.pk, quantity=6, average_price=Decimal("1000.0500"), t1_quantity=6)
    ]
    assert adapter_for(other).holdings() == []


def test_a_bse_share_and_an_mcx_future_from_the_sample_master_fill_on_the_paper_exchange(world):
    from django.utils import timezone

    from marketdata.models import Instrument
    from marketdata.sample_master import sample_rows
    from marketdata.services import instrument_upsert_many

    rows = [row for row in sample_rows(timezone.localdate()) if row["exchange"] in {"BSE", "MCX"}]
    assert not instrument_upsert_many(rows=enumerate(rows, start=1)).errors
    bse = Instrument.objects.get(exchange="BSE", tradingsymbol="RELIANCE")
    goldm = Instrument.objects.get(exchange="MCX", underlying="GOLDM")
    world.quote(bse, "1550.00", asks=[(1550.05, 100)], bids=[(1549.95, 100)])
    world.quote(goldm, "130000", asks=[(130001, 50)], bids=[(129999, 50)])
    share = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(bse, quantity=20, price=D("1550.05"), product="CNC"),
        source="api",
    )
    future = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(goldm, quantity=goldm.lot_size, order_type="MARKET", product="NRML"),
        source="api",
    )
    assert (share.status, share.filled_quantity, share.average_price) == (Status.FILLED, 20, D("1550.05"))
    assert (future.status, future.filled_quantity, future.average_price) == (Status.FILLED, 10, D("130001"))
    positions = {p.instrument_id: p.net_quantity for p in Position.objects.filter(account=world.account)}
    assert positions == {bse.pk: 20, goldm.pk: 10}
