"""The webhook formats (strategies.webhooks): TradingView's alert message, ChartInk's scan alert and
the Amibroker-style plain body, each parsed into one Signal or refused with the field named."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.errors import WebhookPayloadInvalid
from strategies.webhooks import Signal, SignalOrder, derived_signal_id, guess_source, parse_signal

# The body ChartInk posts, as its alert webhook sends it (field names and value shapes).
CHARTINK = {
    "stocks": "SEPOWER,ASTEC,EDUCOMP",
    "trigger_prices": "3.75,541.8,2.1",
    "triggered_at": "2:34 pm",
    "scan_name": "Short term breakouts",
    "scan_url": "short-term-breakouts",
    "alert_name": "Alert for Short term breakouts",
    "webhook_url": "http://example.invalid/hooks/strategies/x/",
}


def _refused_field(body, **kwargs) -> str:
    with pytest.raises(WebhookPayloadInvalid) as refused:
        parse_signal(body, **kwargs)
    assert refused.value.status == 422
    return refused.value.extra["field"]


def test_a_tradingview_strategy_alert_with_placeholders_filled_in_becomes_one_order():
    body = {
        "action": "buy",
        "ticker": "NSE:RELIANCE",
        "contracts": "10.0",  # TradingView fills its placeholders in as text
        "signal_id": "RELIANCE-2026-12-07T04:00:00Z-Long",
        "passphrase": "s3cret",
        "price": "2450.5",
    }
    signal = parse_signal(body)
    assert signal == Signal(
        "tradingview",
        "RELIANCE-2026-12-07T04:00:00Z-Long",
        "MIS",
        (SignalOrder("NSE", "RELIANCE", "buy", 10, None, Decimal("2450.5")),),
    )


def test_a_tradingview_position_size_asks_for_that_position_whatever_the_action():
    signal = parse_signal({"action": "sell", "ticker": "INFY", "exchange": "NSE", "position_size": "-5"})
    assert signal.orders == (SignalOrder("NSE", "INFY", "target", None, -5, None),)


def test_a_tradingview_exit_without_a_ticker_closes_every_position():
    signal = parse_signal({"action": "exit-all", "ticker": None, "id": "x1"}, query={"format": "tradingview"})
    assert signal.exit_all and signal.orders == ()


def test_chartink_alerts_give_every_listed_stock_the_action_from_the_url():
    signal = parse_signal(CHARTINK, query={"action": "short", "quantity": "3"})
    assert signal.source == "chartink" and signal.signal_id is None
    assert [(o.symbol, o.action, o.quantity, o.price) for o in signal.orders] == [
        ("SEPOWER", "short", 3, Decimal("3.75")),
        ("ASTEC", "short", 3, Decimal("541.8")),
        ("EDUCOMP", "short", 3, Decimal("2.1")),
    ]


def test_chartink_alerts_take_the_action_from_a_word_in_the_alerts_name():
    signal = parse_signal(CHARTINK | {"alert_name": "BUY breakouts"})
    assert {o.action for o in signal.orders} == {"buy"} and {o.quantity for o in signal.orders} == {1}


def test_a_chartink_alert_with_no_action_anywhere_is_refused_naming_the_action():
    assert _refused_field(CHARTINK) == "action"


def test_an_amibroker_style_body_becomes_one_order():
    signal = parse_signal({"symbol": "TCS", "action": "SHORT", "qty": 2, "id": 17, "secret": "s"})
    assert signal == Signal("amibroker", "17", "MIS", (SignalOrder("NSE", "TCS", "short", 2, None, None),))


def test_an_amibroker_style_body_with_a_misspelt_field_is_refused_naming_it():
    assert _refused_field({"symbol": "TCS", "action": "buy", "qtty": 2}) == "qtty"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symbol": "TCS", "action": "hold", "qty": 1}, "action"),
        ({"symbol": "TCS", "action": "buy", "qty": 1.5}, "qty"),
        ({"symbol": "TCS", "action": "buy", "qty": 0}, "qty"),
        ({"symbol": "TCS", "action": "buy", "qty": True}, "qty"),
        ({"symbol": "TCS", "action": "buy", "qty": "1e99"}, "qty"),
        ({"symbol": "TCS", "action": "buy"}, "qty"),
        ({"symbol": "TC\x00S", "action": "buy", "qty": 1}, "symbol"),
        ({"symbol": "TCS", "exchange": "NYSE", "action": "buy", "qty": 1}, "exchange"),
        ({"symbol": "T C S", "action": "buy", "qty": 1}, "symbol"),
        ({"action": "buy", "qty": 1}, "symbol"),
        ({"symbol": "TCS", "action": "buy", "qty": 1, "id": "\n"}, "id"),
        ({"ticker": "TCS", "action": "buy", "contracts": "NaN"}, "contracts"),
        ({"ticker": "TCS", "action": "buy", "contracts": 1, "price": "-1"}, "price"),
        ({"ticker": "TCS", "action": "buy", "contracts": 1, "product": "BTST"}, "product"),
        ({"symbol": "TCS", "action": "buy", "qty": 1, "format": "metastock"}, "format"),
    ],
)
def test_malformed_signals_are_refused_naming_the_field(body, field):
    assert _refused_field(body) == field


def test_the_format_is_named_by_the_query_or_guessed_from_the_body():
    assert guess_source(CHARTINK) == "chartink"
    assert guess_source({"ticker": "X"}) == "tradingview"
    assert guess_source({"symbol": "X"}) == "amibroker"
    assert guess_source({"symbol": "X"}, "TradingView") == "tradingview"


def test_a_derived_signal_id_ignores_the_secret_and_changes_with_the_minute():
    first = derived_signal_id({"a": 1, "secret": "x"}, day="2026-12-07", minute="09:31")
    assert first == derived_signal_id({"a": 1, "secret": "y"}, day="2026-12-07", minute="09:31")
    assert first != derived_signal_id({"a": 1}, day="2026-12-07", minute="09:32")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "action",
        "ticker",
        "symbol",
        "qty",
        "quantity",
        "contracts",
        "position_size",
        "stocks",
        "trigger_prices",
        "id",
        "signal_id",
        "exchange",
        "product",
        "price",
        "format",
        "alert_name",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=st.dictionaries(KEYS | st.text(max_size=8), JSON, max_size=8))
def test_any_json_object_either_parses_into_a_bounded_signal_or_is_refused_with_a_field(body):
    try:
        signal = parse_signal(body)
    except WebhookPayloadInvalid as refused:
        assert refused.status == 422 and refused.extra["field"]
        return
    assert signal.exit_all or signal.orders
    for order in signal.orders:
        assert order.quantity is None or 0 < order.quantity <= 10_000_000
        assert order.symbol and order.exchange
