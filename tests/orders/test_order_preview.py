"""The margin and charges shown before placing (orders.preview) equal what placing then blocks and what
the backtester charges."""

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.charges import ChargeSchedule, order_charges
from orders.errors import OrderInvalid
from orders.models import Funds
from orders.preview import MAX_LEGS, order_preview
from orders.services import OrderRequest, place_basket, place_order

pytestmark = pytest.mark.django_db


def _blocked(world) -> Decimal:
    funds = Funds.objects.filter(account=world.account).first()
    return funds.margin_blocked if funds else Decimal(0)


def test_a_resting_limit_buy_previews_the_margin_placing_blocks(world):
    world.quote(world.equity, 1000, bid="999.95", ask="1000.05")
    request = world.request(world.equity, price=Decimal("990"))
    preview = order_preview(account=world.account, actor=world.trader, requests=[request])
    place_order(actor=world.trader, account=world.account, request=request, source="web")
    assert preview.margin == _blocked(world) == Decimal("1980.00")  # 10 x 990 / MIS leverage 5
    assert preview.basis == "rules" and not preview.hedge


def test_the_charges_are_the_backtesters_for_the_same_turnover(world):
    world.quote(world.equity, 1000)
    preview = order_preview(
        account=world.account, actor=world.trader, requests=[world.request(world.equity, price=Decimal("990"))]
    )
    expected = order_charges(schedule=ChargeSchedule(), segment="equity_intraday", side="BUY", turnover=Decimal(9900))
    assert preview.legs[0].charges == expected and preview.charges == expected.total


def test_a_market_order_is_valued_at_the_last_price(world):
    world.quote(world.future, 20000)
    request = world.request(world.future, quantity=75, order_type="MARKET", product="NRML")
    preview = order_preview(account=world.account, actor=world.trader, requests=[request])
    assert preview.legs[0].price == Decimal(20000)
    assert preview.margin == Decimal(75 * 20000) * Decimal("0.15")  # PAPER_FO_MARGIN_PCT 15


def test_a_buy_and_a_sell_of_one_contract_block_the_larger_side(world):
    world.quote(world.future, 20000)
    legs = [
        world.request(world.future, side="BUY", quantity=75, product="NRML", price=Decimal("19900")),
        world.request(world.future, side="SELL", quantity=75, product="NRML", price=Decimal("20100")),
    ]
    preview = order_preview(account=world.account, actor=world.trader, requests=legs)
    place_basket(actor=world.trader, account=world.account, requests=legs, source="web")
    assert preview.margin == _blocked(world) == (Decimal(75 * 20100) * Decimal("0.15")).quantize(Decimal("0.01"))


def test_an_exit_of_an_open_position_previews_no_new_margin(world):
    world.quote(world.equity, 1000, bid="999.95", ask="1000.05")
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="web",
    )
    before = _blocked(world)
    exit_leg = world.request(world.equity, side="SELL", price=Decimal("1010"))
    preview = order_preview(account=world.account, actor=world.trader, requests=[exit_leg])
    place_order(actor=world.trader, account=world.account, request=exit_leg, source="web")
    assert preview.margin == _blocked(world) - before


LEG = st.fixed_dictionaries(
    {
        "which": st.sampled_from(["equity", "future"]),
        "side": st.sampled_from(["BUY", "SELL"]),
        "lots": st.integers(min_value=1, max_value=4),
        "product": st.sampled_from(["MIS", "NRML_OR_CNC"]),
        "away": st.integers(min_value=1, max_value=40),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(legs=st.lists(LEG, min_size=1, max_size=5))
def test_any_basket_of_resting_legs_previews_exactly_what_placing_blocks(world, legs):
    from brokers.models import BrokerAccount

    # A fresh account per example: orders are the trade trail, which the database keeps.
    account = BrokerAccount.objects.create(
        organisation=world.org, label="Fresh", broker="paper", client_code=uuid.uuid4().hex[:12]
    )
    world.quote(world.equity, 1000, bid="999.95", ask="1000.05", tick=False)
    world.quote(world.future, 20000, bid="19999", ask="20001", tick=False)
    requests = []
    for leg in legs:
        instrument = world.equity if leg["which"] == "equity" else world.future
        ltp = Decimal(1000) if instrument is world.equity else Decimal(20000)
        # Away from the market on the resting side: a buy below, a sell above, so nothing fills.
        price = ltp - leg["away"] if leg["side"] == "BUY" else ltp + leg["away"]
        product = leg["product"] if leg["product"] == "MIS" else ("NRML" if instrument is world.future else "CNC")
        requests.append(
            OrderRequest(
                instrument_id=instrument.pk,
                side=leg["side"],
                quantity=leg["lots"] * instrument.lot_size,
                order_type="LIMIT",
                product=product,
                price=price,
            )
        )
    preview = order_preview(account=account, actor=world.trader, requests=requests)
    results = place_basket(actor=world.trader, account=account, requests=requests, source="web")
    if all(r.error is None for r in results):  # a leg refused by a rule (CNC sell with no holding) blocks nothing
        assert preview.margin == Funds.objects.get(account=account).margin_blocked


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"instrument_id": 987654}, "instrument_not_found"),
        ({"quantity": 0}, "quantity_not_positive"),
        ({"quantity": -5}, "quantity_not_positive"),
        ({"quantity": 10**30}, "quantity_out_of_range"),
        ({"instrument_id": "future", "quantity": 10}, "instrument_not_found"),
        ({"side": "BU\x00Y"}, "invalid_side"),
    ],
)
def test_an_invalid_leg_is_named_with_its_code(world, change, code):
    world.quote(world.equity, 1000)
    good = world.request(world.equity, price=Decimal("990"))
    bad = replace(good, **change)
    with pytest.raises(OrderInvalid) as refused:
        order_preview(account=world.account, actor=world.trader, requests=[good, bad])
    assert refused.value.code == "basket_invalid"
    assert [(leg["leg"], leg["code"]) for leg in refused.value.extra["legs"]] == [(1, code)]


def test_an_empty_or_oversized_basket_is_refused(world):
    with pytest.raises(OrderInvalid, match="at least one"):
        order_preview(account=world.account, actor=world.trader, requests=[])
    leg = world.request(world.equity, price=Decimal("990"))
    with pytest.raises(OrderInvalid) as refused:
        order_preview(account=world.account, actor=world.trader, requests=[leg] * (MAX_LEGS + 1))
    assert refused.value.code == "basket_too_large"


def test_a_leg_off_the_lot_size_is_named(world):
    world.quote(world.future, 20000)
    leg = world.request(world.future, quantity=10, product="NRML", price=Decimal("19900"))
    with pytest.raises(OrderInvalid) as refused:
        order_preview(account=world.account, actor=world.trader, requests=[leg])
    assert refused.value.extra["legs"][0]["code"] == "quantity_not_lot_multiple"
