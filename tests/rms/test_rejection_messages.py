"""A pre-trade rejection reads as Indians read money: rupees with Indian grouping, prices with the tick's
places; its ``extra`` keeps the plain decimals a program reads."""

from decimal import Decimal

import pytest

from rms.errors import RiskRejected
from rms.models import RiskLimit
from rms.services import check_pre_trade
from tests.otp_session import login_with_otp
from tests.rms.test_check_pre_trade import account, intent, state  # noqa: F401

D = Decimal


def test_an_order_beyond_the_margin_is_refused_over_the_api_in_rupees_with_indian_grouping(client, world, settings):
    settings.PAPER_OPENING_CASH = 1_000_000
    login_with_otp(client, world.trader)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = {
        "account_id": world.account.pk,
        "instrument_id": world.equity.pk,
        "side": "BUY",
        "quantity": 10000,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": "990",
    }
    response = client.post("/api/v1/orders", data=order, content_type="application/json")
    assert response.status_code == 422, response.content
    error = response.json()
    assert error["code"] == "insufficient_margin"
    # 10000 x 990 at MIS leverage 5 against the paper account's opening cash
    assert error["message"] == "The order needs ₹19,80,000.00 of margin; ₹10,00,000.00 is available."
    assert D(error["extra"]["required"]) == D("1980000") and D(error["extra"]["available"]) == D("1000000")
    assert "₹" not in error["extra"]["required"] + error["extra"]["available"]


def _message(order, risk) -> str:
    with pytest.raises(RiskRejected) as caught:
        check_pre_trade(intent=order, state=risk)
    return caught.value.message


def test_value_and_loss_limits_name_their_amounts_in_rupees(account):  # noqa: F811
    RiskLimit.objects.create(account=account, max_order_value=D("1000000"), max_daily_loss=D("250000"))
    assert (
        _message(intent(account, quantity=1001), state())
        == "Order value ₹10,01,000.00 is above the limit of ₹10,00,000.00."
    )
    assert (
        _message(intent(account), state(realised_today=D("-200000"), mtm=D("-50000.5")))
        == "Today's loss ₹2,50,000.50 has reached the limit of ₹2,50,000.00."
    )


def test_price_rules_name_prices_with_the_ticks_places(account):  # noqa: F811
    RiskLimit.objects.create(account=account, max_ltp_deviation_pct=D("2"))
    far = intent(account, price=D("22500"), lower_circuit=D("20000"), upper_circuit=D("25000"), tick_size=D("0.05"))
    assert _message(far, state(ltp=D("22000.1"))) == (
        "Price 22,500.00 is 2.27% from the last price 22,000.10 (limit 2.00%)."
    )
    outside = intent(account, price=D("1100.05"), tick_size=D("0.0500"))
    assert _message(outside, state()) == "Price 1,100.05 is outside the band 900.00-1,100.00."
    off_tick = intent(account, price=D("1000.03"), tick_size=D("0.0500"))
    assert _message(off_tick, state()) == "Price 1,000.03 is not a multiple of the tick size 0.05."


def test_a_stops_trigger_and_the_order_bounds_read_with_indian_grouping(account):  # noqa: F811
    stop = intent(
        account,
        order_type="SL",
        price=D("22010"),
        trigger_price=D("21995"),  # at or below the price, as a stop-loss buy's must be, yet below the LTP
        lower_circuit=D("20000"),
        upper_circuit=D("25000"),
    )
    assert _message(stop, state(ltp=D("22000.1"))) == (
        "A stop-loss buy's trigger must be above the last price 22,000.10."
    )
    assert _message(intent(account, price=D("1e12")), state()) == "Price must be below 10,00,00,00,000."
    assert _message(intent(account, quantity=10**9), state()) == "Quantity can be at most 10,00,00,000."
