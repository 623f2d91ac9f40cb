"""Indian charges per executed order (brokers/charges.py), worked out by hand on the default schedule.

Reference: Zerodha's published charges list (zerodha.com/charges, with NSE's rates from 1 October 2024 as
reproduced by select.finology.in, "How to use Zerodha brokerage calculator") and the STT of the Finance
(No. 2) Act 2024: each expected value below is that list's rate applied to the turnover, to the paisa."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from brokers.charges import ChargeSchedule, order_charges, segment_of

DEFAULT = ChargeSchedule()


def test_an_intraday_equity_sell_pays_capped_brokerage_stt_exchange_sebi_and_gst_but_no_stamp():
    # 10 x 1513 = 15,130: brokerage 0.03 % = 4.539 -> 4.54 (under the Rs 20 cap); STT 0.025 % = 3.7825 -> 3.78;
    # exchange 0.00297 % = 0.449 -> 0.45; SEBI Rs 10 a crore = 0.015 -> 0.02; GST 18 % of 5.01 = 0.90.
    c = order_charges(schedule=DEFAULT, segment="equity_intraday", side="SELL", turnover=Decimal(15130))
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == (
        Decimal("4.54"),
        Decimal("3.78"),
        Decimal("0.45"),
        Decimal("0.02"),
        Decimal("0.00"),
        Decimal("0.90"),
    )
    assert c.total == Decimal("9.69")


def test_brokerage_stops_at_its_cap_and_a_buy_pays_stamp_duty_instead_of_stt():
    # 10,00,000 intraday buy: brokerage min(300, 20) = 20; STT 0; exchange 29.70; SEBI 1.00;
    # stamp 0.003 % = 30.00; GST 18 % of 50.70 = 9.126 -> 9.13.
    c = order_charges(schedule=DEFAULT, segment="equity_intraday", side="BUY", turnover=Decimal(1_000_000))
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == (
        Decimal("20.00"),
        Decimal("0.00"),
        Decimal("29.70"),
        Decimal("1.00"),
        Decimal("30.00"),
        Decimal("9.13"),
    )


def test_delivery_pays_stt_on_both_sides_and_no_brokerage():
    c = order_charges(schedule=DEFAULT, segment="equity_delivery", side="BUY", turnover=Decimal(100_000))
    assert c.brokerage == Decimal("0.00")
    assert c.stt == Decimal("100.00")  # 0.1 %
    assert c.stamp == Decimal("15.00")  # 0.015 %


def test_options_pay_a_flat_brokerage_per_order():
    c = order_charges(schedule=DEFAULT, segment="options", side="SELL", turnover=Decimal(5_000))
    assert c.brokerage == Decimal("20.00")
    assert c.stt == Decimal("5.00")  # 0.1 % of the premium


def test_a_disabled_schedule_charges_nothing():
    c = order_charges(schedule=ChargeSchedule.none(), segment="futures", side="BUY", turnover=Decimal(1_000_000))
    assert c.total == 0


def test_the_segment_follows_the_instrument_type_and_the_product():
    assert segment_of(instrument_type="EQ", product="MIS") == "equity_intraday"
    assert segment_of(instrument_type="EQ", product="CNC") == "equity_delivery"
    assert segment_of(instrument_type="FUT", product="NRML") == "futures"
    assert segment_of(instrument_type="PE", product="MIS") == "options"


@pytest.mark.parametrize("bad", [{"futures": {"stt_sell": "-1"}}, {"options": {"gst_rate": "2"}}, {"unknown": {}}])
def test_a_schedule_with_a_negative_rate_a_rate_above_one_or_an_unknown_segment_is_refused(bad):
    with pytest.raises(ValidationError):
        ChargeSchedule.model_validate(bad)


def test_a_futures_sell_pays_the_published_stt_of_0_02_percent_and_nse_futures_charges_of_0_00173_percent():
    # 10,00,000 sell: brokerage min(300, 20) = 20; STT 0.02 % = 200; NSE 0.00173 % = 17.30; SEBI 1.00;
    # no stamp on a sell; GST 18 % of 38.30 = 6.894 -> 6.89.
    c = order_charges(schedule=DEFAULT, segment="futures", side="SELL", turnover=Decimal(1_000_000))
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == (
        Decimal("20.00"),
        Decimal("200.00"),
        Decimal("17.30"),
        Decimal("1.00"),
        Decimal("0.00"),
        Decimal("6.89"),
    )
    assert c.total == Decimal("245.19")


def test_an_option_buy_pays_flat_brokerage_nse_premium_charges_stamp_and_no_stt():
    # Premium 5,000 bought: brokerage 20; NSE 0.03503 % = 1.7515 -> 1.75; SEBI 0.005 -> 0.01; stamp 0.003 % =
    # 0.15; GST 18 % of 21.76 = 3.9168 -> 3.92.
    c = order_charges(schedule=DEFAULT, segment="options", side="BUY", turnover=Decimal(5_000))
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == (
        Decimal("20.00"),
        Decimal("0.00"),
        Decimal("1.75"),
        Decimal("0.01"),
        Decimal("0.15"),
        Decimal("3.92"),
    )
    assert c.total == Decimal("25.83")


def test_a_delivery_sell_pays_stt_of_0_1_percent_no_brokerage_and_no_stamp():
    # 1,00,000 sold from holdings: STT 100; NSE 0.00297 % = 2.97; SEBI 0.10; GST 18 % of 3.07 = 0.5526 -> 0.55.
    c = order_charges(schedule=DEFAULT, segment="equity_delivery", side="SELL", turnover=Decimal(100_000))
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == (
        Decimal("0.00"),
        Decimal("100.00"),
        Decimal("2.97"),
        Decimal("0.10"),
        Decimal("0.00"),
        Decimal("0.55"),
    )
    assert c.total == Decimal("103.62")
