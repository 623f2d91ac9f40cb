from decimal import Decimal

import pytest

from audit.models import AuditEvent
from core.errors import ApplicationError
from orders.errors import OrderInvalid
from orders.models import Funds, Order, OrderEvent, Position, Trade
from orders.services import modify_order, place_order, place_sliced_order
from orders.states import Status
from rms.errors import RiskRejected

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
    from paper.models import PaperOrder

    assert PaperOrder.objects.count() == 1


def _rejections(rule: str) -> int:
    return sum(1 for event in AuditEvent.objects.filter(action="rms.rejected") if event.payload_data["rule"] == rule)


def test_a_delivery_sell_without_holdings_is_refused_and_audited_and_writes_nothing(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    with pytest.raises(RiskRejected) as refused:
        place_order(
            actor=world.trader,
            account=world.account,
            request=world.request(world.equity, side="SELL", order_type="MARKET", product="CNC"),
            source="api",
        )
    assert refused.value.code == "insufficient_holdings" and refused.value.extra["sellable"] == "0"
    assert not Order.objects.exists() and not Position.objects.filter(net_quantity__lt=0).exists()
    assert _rejections("insufficient_holdings") == 1


def test_a_delivery_sell_may_sell_what_was_bought_today_less_what_is_already_selling(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    cnc = {"product": "CNC"}
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET", **cnc),
        source="api",
    )
    resting = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, side="SELL", quantity=6, price=Decimal("1010"), **cnc),
        source="api",
    )
    assert resting.status == Status.OPEN
    with pytest.raises(RiskRejected) as refused:  # 10 held, 6 selling: 4 more can be sold
        place_order(
            actor=world.trader,
            account=world.account,
            request=world.request(world.equity, side="SELL", quantity=5, price=Decimal("1010"), **cnc),
            source="api",
        )
    assert refused.value.code == "insufficient_holdings" and refused.value.extra["sellable"] == "4"
    last = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, side="SELL", quantity=4, order_type="MARKET", **cnc),
        source="api",
    )
    assert last.status == Status.FILLED
    assert Position.objects.get(account=world.account, instrument=world.equity, product="CNC").net_quantity == 6


def test_raising_a_working_delivery_sell_above_the_holdings_is_refused(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET", product="CNC"),
        source="api",
    )
    sell = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, side="SELL", quantity=10, price=Decimal("1010"), product="CNC"),
        source="api",
    )
    with pytest.raises(RiskRejected) as refused:
        modify_order(actor=world.trader, order=sell, quantity=11)
    assert refused.value.code == "insufficient_holdings"
    sell.refresh_from_db()
    assert sell.quantity == 10


@pytest.mark.parametrize(
    ("side", "trigger"),
    [("SELL", "1000.05"), ("SELL", "1000"), ("BUY", "999.95"), ("BUY", "1000")],
)
def test_a_stop_loss_with_its_trigger_on_the_wrong_side_of_the_last_price_is_refused(world, side, trigger):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    with pytest.raises(RiskRejected) as refused:
        place_order(
            actor=world.trader,
            account=world.account,
            request=world.request(world.equity, side=side, order_type="SL-M", trigger_price=Decimal(trigger)),
            source="api",
        )
    assert refused.value.code == "trigger_wrong_side"
    assert not Order.objects.exists() and _rejections("trigger_wrong_side") == 1


def test_a_stop_loss_on_the_right_side_waits_for_its_trigger_and_a_modify_to_the_wrong_side_is_refused(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    stop = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, side="SELL", order_type="SL-M", trigger_price=Decimal("990")),
        source="api",
    )
    assert stop.status == Status.TRIGGER_PENDING
    with pytest.raises(RiskRejected) as refused:
        modify_order(actor=world.trader, order=stop, trigger_price=Decimal("1005"))
    assert refused.value.code == "trigger_wrong_side"
    stop.refresh_from_db()
    assert stop.trigger_price == Decimal("990") and stop.status == Status.TRIGGER_PENDING


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"quantity": 10**30}, "quantity_out_of_range"),
        ({"price": Decimal("1e400")}, "price_out_of_range"),
        ({"price": Decimal("NaN")}, "price_not_finite"),
        ({"order_type": "SL", "trigger_price": Decimal("-Infinity")}, "trigger_price_not_finite"),
        ({"quantity": 1.5}, "quantity_not_whole"),
        ({"price": 990.0}, "price_not_a_number"),
    ],
)
def test_numbers_no_order_can_carry_are_refused_by_the_service_with_a_code_naming_the_field(world, changes, code):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    for place in (place_order, place_sliced_order):
        with pytest.raises(ApplicationError) as refused:
            place(
                actor=world.trader, account=world.account, request=world.request(world.equity, **changes), source="api"
            )
        assert refused.value.code == code and refused.value.status == 422
    assert not Order.objects.exists() and _rejections(code) == 2


def test_a_sliced_order_of_more_slices_than_allowed_is_refused(world, settings):
    world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
    request = world.request(world.future, quantity=1800 * 51, price=Decimal("19990"), product="NRML")
    with pytest.raises(OrderInvalid) as refused:
        place_sliced_order(actor=world.trader, account=world.account, request=request, source="api")
    assert refused.value.code == "too_many_slices" and not Order.objects.exists()
