from decimal import Decimal

import pytest

from compliance.models import AuditEvent
from orders.models import Funds, Order, OrderEvent, Position, Trade
from orders.services import place_order
from orders.states import Status

pytestmark = pytest.mark.django_db


def test_a_limit_buy_below_the_market_rests_open_and_blocks_margin(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("990")),
        source="api",
    )
    assert order.status == Status.OPEN and order.broker_order_id
    funds = Funds.objects.get(account=world.account)
    assert funds.margin_blocked == Decimal("1980.00")  # 10 x 990 / MIS leverage 5
    assert list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True)) == ["placed", "broker_update"]
    assert AuditEvent.objects.filter(action="order.placed", target_id=str(order.pk)).exists()


def test_a_market_buy_fills_at_the_ask_and_builds_a_position(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="web",
    )
    assert order.status == Status.FILLED and order.filled_quantity == 10 and order.average_price == Decimal("1000.05")
    position = Position.objects.get(account=world.account, instrument=world.equity)
    assert position.net_quantity == 10 and position.average_price == Decimal("1000.05")
    assert Trade.objects.filter(order=order).count() == 1
    assert AuditEvent.objects.filter(action="order.filled").count() == 1


def test_a_resting_limit_order_fills_when_a_later_tick_crosses_its_price(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("995")),
        source="api",
    )
    world.quote(world.equity, 994, bid=993.95, ask=994.50)
    order.refresh_from_db()
    assert order.status == Status.FILLED and order.average_price == Decimal("994.50")
    assert Funds.objects.get(account=world.account).margin_blocked == Decimal("1989.00")  # now the position's block


def test_a_repeated_idempotency_key_returns_the_same_order(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    request = world.request(world.equity, price=Decimal("990"))
    first = place_order(actor=world.trader, account=world.account, request=request, source="api", idempotency_key="k-1")
    second = place_order(
        actor=world.trader, account=world.account, request=request, source="api", idempotency_key="k-1"
    )
    assert first.pk == second.pk
    assert Order.objects.count() == 1
    from brokers.models import PaperOrder

    assert PaperOrder.objects.count() == 1
