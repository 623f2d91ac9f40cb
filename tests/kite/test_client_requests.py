"""Every KiteClient method against the fake Kite: the exact request on the wire and the typed answer."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from kite.client import KiteClient
from kite.records import (
    GttLeg,
    GttRequest,
    KiteGtt,
    KiteInstrument,
    KiteOrder,
    KiteOrderParams,
    KiteSession,
    KiteTrade,
)
from tests.kite import fake_kite as fk

# 09:15 IST is 03:45 UTC.
STAMP_UTC = datetime(2026, 12, 7, 3, 45, tzinfo=UTC)
AUTH = f"token {fk.API_KEY}:{fk.ACCESS_TOKEN}"


def assert_kite_headers(recorded: fk.Recorded, *, auth: str | None = AUTH) -> None:
    assert recorded.headers["x-kite-version"] == "3"
    assert recorded.headers.get("authorization") == auth


def limit_order(**changes) -> KiteOrderParams:
    fields = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "quantity": 5,
        "product": "CNC",
        "order_type": "LIMIT",
        "price": Decimal("1490.05"),
        "tag": "co42abc",
    }
    return KiteOrderParams(**{**fields, **changes})


def test_generate_session_posts_the_checksum_and_returns_the_tokens(fake_kite, make_client):
    client = make_client(access_token=None)

    session = client.generate_session(fk.REQUEST_TOKEN, fk.API_SECRET)

    recorded = fake_kite.last("POST", "/session/token")
    assert_kite_headers(recorded, auth=None)
    assert recorded.headers["content-type"] == "application/x-www-form-urlencoded"
    checksum = hashlib.sha256((fk.API_KEY + fk.REQUEST_TOKEN + fk.API_SECRET).encode()).hexdigest()
    assert recorded.form == [("api_key", fk.API_KEY), ("request_token", fk.REQUEST_TOKEN), ("checksum", checksum)]
    assert isinstance(session, KiteSession)
    assert session.access_token == fk.ACCESS_TOKEN
    assert session.refresh_token == fk.REFRESH_TOKEN
    assert session.profile.user_id == "AB1234"
    assert session.login_time == STAMP_UTC
    assert fk.ACCESS_TOKEN not in repr(session)


def test_with_access_token_authorises_the_next_calls(fake_kite, make_client):
    client = make_client(access_token=None)
    session = client.generate_session(fk.REQUEST_TOKEN, fk.API_SECRET)

    profile = client.with_access_token(session.access_token).profile()

    assert profile.user_id == "AB1234"
    assert_kite_headers(fake_kite.last("GET", "/user/profile"))


def test_invalidate_session_deletes_the_token_in_the_query(fake_kite, kite):
    kite.invalidate_session()

    recorded = fake_kite.last("DELETE", "/session/token")
    assert_kite_headers(recorded)
    assert recorded.query == [("api_key", fk.API_KEY), ("access_token", fk.ACCESS_TOKEN)]
    assert recorded.body == b""
    assert not fake_kite.access_token_valid


def test_profile(fake_kite, kite):
    profile = kite.profile()

    assert_kite_headers(fake_kite.last("GET", "/user/profile"))
    assert profile.user_name == "Test Trader"
    assert profile.exchanges == ("NSE", "NFO", "BSE")
    assert profile.order_types == ("MARKET", "LIMIT", "SL", "SL-M")


def test_login_url_names_the_key_and_version(kite):
    assert kite.login_url() == f"https://kite.zerodha.com/connect/login?api_key={fk.API_KEY}&v=3"


@pytest.mark.parametrize("variety", ["regular", "amo", "co"])
def test_place_order_posts_the_form_to_the_variety(fake_kite, kite, variety):
    order_id = kite.place_order(variety, limit_order(market_protection=-1, trigger_price=Decimal("1480")))

    recorded = fake_kite.last("POST", f"/orders/{variety}")
    assert_kite_headers(recorded)
    assert recorded.headers["content-type"] == "application/x-www-form-urlencoded"
    assert recorded.form == [
        ("exchange", "NSE"),
        ("tradingsymbol", "INFY"),
        ("transaction_type", "BUY"),
        ("quantity", "5"),
        ("product", "CNC"),
        ("order_type", "LIMIT"),
        ("validity", "DAY"),
        ("price", "1490.05"),
        ("trigger_price", "1480"),
        ("market_protection", "-1"),
        ("tag", "co42abc"),
    ]
    assert order_id == "151220000000001"
    assert fake_kite.orders[order_id]["variety"] == variety


def test_place_iceberg_order_sends_the_legs(fake_kite, kite):
    kite.place_order(
        "iceberg", limit_order(quantity=100, iceberg_legs=4, iceberg_quantity=25, validity="TTL", validity_ttl=5)
    )

    form = fake_kite.last("POST", "/orders/iceberg").form_dict
    assert (form["iceberg_legs"], form["iceberg_quantity"], form["validity"], form["validity_ttl"]) == (
        "4",
        "25",
        "TTL",
        "5",
    )


def test_place_order_checks_its_fields_before_sending(fake_kite, kite):
    with pytest.raises(ValueError, match="tag"):
        limit_order(tag="this-tag-has-dashes")
    with pytest.raises(ValueError, match="tag"):
        limit_order(tag="a" * 21)
    with pytest.raises(ValueError, match="market_protection"):
        limit_order(market_protection=101)
    with pytest.raises(ValueError, match="iceberg"):
        kite.place_order("iceberg", limit_order())
    with pytest.raises(ValueError, match="variety"):
        kite.place_order("bo", limit_order())
    assert fake_kite.requests == []


def test_placed_orders_show_in_the_book_history_and_trades(fake_kite, kite):
    resting = kite.place_order("regular", limit_order())
    filled = kite.place_order("regular", limit_order(order_type="MARKET", price=None, tag="mkt1"))

    book = kite.orders()
    assert [o.order_id for o in book] == [resting, filled]
    assert all(isinstance(o, KiteOrder) for o in book)
    assert (book[0].status, book[0].price, book[0].tag, book[0].pending_quantity) == (
        "OPEN",
        Decimal("1490.05"),
        "co42abc",
        5,
    )
    assert (book[1].status, book[1].average_price, book[1].filled_quantity) == ("COMPLETE", Decimal("1500.5"), 5)
    assert book[1].order_timestamp == STAMP_UTC

    history = kite.order_history(filled)
    assert [o.status for o in history] == ["PUT ORDER REQ RECEIVED", "OPEN", "COMPLETE"]
    assert_kite_headers(fake_kite.last("GET", f"/orders/{filled}"))

    trades = kite.trades()
    assert len(trades) == 1 and isinstance(trades[0], KiteTrade)
    assert (trades[0].order_id, trades[0].quantity, trades[0].average_price) == (filled, 5, Decimal("1500.5"))
    assert trades[0].fill_timestamp == STAMP_UTC
    assert trades[0].order_timestamp is None  # the trade book gives only a time of day
    assert kite.order_trades(filled) == trades
    assert kite.order_trades(resting) == ()
    assert_kite_headers(fake_kite.last("GET", f"/orders/{resting}/trades"))


def test_modify_order_puts_only_the_changed_fields(fake_kite, kite):
    order_id = kite.place_order("regular", limit_order())

    assert kite.modify_order("regular", order_id, price=Decimal("1495.10"), quantity=7, market_protection=2) == order_id

    recorded = fake_kite.last("PUT", f"/orders/regular/{order_id}")
    assert_kite_headers(recorded)
    assert recorded.form == [("quantity", "7"), ("price", "1495.10"), ("market_protection", "2")]
    (order,) = kite.orders()
    assert (order.price, order.quantity, order.status) == (Decimal("1495.1"), 7, "OPEN")


def test_modify_order_needs_a_change(fake_kite, kite):
    with pytest.raises(ValueError):
        kite.modify_order("regular", "151220000000001")
    assert fake_kite.requests == []


def test_cancel_order_deletes_it(fake_kite, kite):
    order_id = kite.place_order("regular", limit_order())

    assert kite.cancel_order("regular", order_id) == order_id

    recorded = fake_kite.last("DELETE", f"/orders/regular/{order_id}")
    assert_kite_headers(recorded)
    assert recorded.query == [] and recorded.body == b""
    (order,) = kite.orders()
    assert (order.status, order.cancelled_quantity, order.pending_quantity) == ("CANCELLED", 5, 0)


def test_exit_cover_order_names_its_parent(fake_kite, kite):
    order_id = kite.place_order("co", limit_order(trigger_price=Decimal("1470")))

    kite.cancel_order("co", order_id, parent_order_id="151220000000000")

    assert fake_kite.last("DELETE", f"/orders/co/{order_id}").query == [("parent_order_id", "151220000000000")]


def test_order_ids_cannot_reshape_the_path(fake_kite, kite):
    with pytest.raises(ValueError):
        kite.cancel_order("regular", "../session/token")
    with pytest.raises(ValueError):
        kite.order_history("1?x=1")
    assert fake_kite.requests == []


def test_positions_and_holdings(fake_kite, kite):
    positions = kite.positions()
    holdings = kite.holdings()

    assert_kite_headers(fake_kite.last("GET", "/portfolio/positions"))
    assert_kite_headers(fake_kite.last("GET", "/portfolio/holdings"))
    (net,) = positions.net
    assert positions.day == ()
    assert (net.tradingsymbol, net.quantity, net.average_price, net.pnl) == (
        "INFY",
        10,
        Decimal("1498.25"),
        Decimal("22.5"),
    )
    (holding,) = holdings
    assert (holding.isin, holding.quantity, holding.t1_quantity, holding.average_price) == (
        "INE002A01018",
        4,
        1,
        Decimal("2450.75"),
    )


def test_margins_of_both_segments_and_of_one(fake_kite, kite):
    margins = kite.margins()
    equity = kite.segment_margins("equity")
    kite.segment_margins("commodity")

    assert_kite_headers(fake_kite.last("GET", "/user/margins"))
    assert fake_kite.count("GET", "/user/margins/equity") == 1
    assert fake_kite.count("GET", "/user/margins/commodity") == 1
    assert margins.equity == equity
    assert equity.net == Decimal("99725.05")
    assert equity.available.cash == Decimal("245431.6")
    assert equity.utilised.span == Decimal("101989")
    with pytest.raises(ValueError):
        kite.segment_margins("currency")


def test_quote_ltp_ohlc_repeat_the_instrument_key(fake_kite, kite):
    asked = ["NSE:INFY", "NSE:RELIANCE", "BSE:UNKNOWN"]

    quotes = kite.quote(asked)
    ltps = kite.ltp(asked)
    ohlcs = kite.ohlc(asked)

    for path in ("/quote", "/quote/ltp", "/quote/ohlc"):
        recorded = fake_kite.last("GET", path)
        assert_kite_headers(recorded)
        assert recorded.query == [("i", i) for i in asked]
    assert set(quotes) == set(ltps) == set(ohlcs) == {"NSE:INFY", "NSE:RELIANCE"}
    infy = quotes["NSE:INFY"]
    assert (infy.instrument_token, infy.last_price, infy.timestamp) == (408065, Decimal("1500.5"), STAMP_UTC)
    assert infy.bids[0].price == Decimal("1500.45") and infy.asks[0].quantity == 7
    assert infy.ohlc.high == Decimal("1510.5")
    assert ltps["NSE:RELIANCE"].last_price == Decimal("2900.1")
    assert ohlcs["NSE:INFY"].ohlc.close == Decimal("1497.5")


def test_quote_checks_the_instruments(fake_kite, kite):
    assert kite.quote([]) == {}
    with pytest.raises(ValueError):
        kite.quote(["INFY"])
    with pytest.raises(ValueError):
        kite.ltp([f"NSE:S{n}" for n in range(1001)])
    assert fake_kite.requests == []


def single_gtt(trigger: str = "1400") -> GttRequest:
    return GttRequest.single(
        exchange="NSE",
        tradingsymbol="INFY",
        trigger_value=Decimal(trigger),
        last_price=Decimal("1500.5"),
        leg=GttLeg("SELL", 5, Decimal("1399.5")),
    )


def test_gtt_single_place_get_list(fake_kite, kite):
    trigger_id = kite.place_gtt(single_gtt())

    recorded = fake_kite.last("POST", "/gtt/triggers")
    assert_kite_headers(recorded)
    form = recorded.form_dict
    assert form["type"] == "single"
    assert json.loads(form["condition"]) == {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "trigger_values": [1400],
        "last_price": 1500.5,
    }
    assert json.loads(form["orders"]) == [
        {
            "exchange": "NSE",
            "tradingsymbol": "INFY",
            "transaction_type": "SELL",
            "quantity": 5,
            "order_type": "LIMIT",
            "product": "CNC",
            "price": 1399.5,
        }
    ]
    gtt = kite.gtt(trigger_id)
    assert isinstance(gtt, KiteGtt)
    assert (gtt.id, gtt.type, gtt.status, gtt.trigger_values) == (trigger_id, "single", "active", (Decimal("1400"),))
    assert gtt.orders[0].price == Decimal("1399.5") and gtt.created_at == STAMP_UTC
    assert kite.gtts() == (gtt,)
    assert_kite_headers(fake_kite.last("GET", f"/gtt/triggers/{trigger_id}"))
    assert_kite_headers(fake_kite.last("GET", "/gtt/triggers"))


def test_gtt_two_leg_modify_and_delete(fake_kite, kite):
    oco = GttRequest.oco(
        exchange="NSE",
        tradingsymbol="INFY",
        last_price=Decimal("1500.5"),
        stoploss=(Decimal("1400"), GttLeg("SELL", 5, Decimal("1399.5"))),
        target=(Decimal("1650.25"), GttLeg("SELL", 5, Decimal("1650"))),
    )
    trigger_id = kite.place_gtt(single_gtt())

    assert kite.modify_gtt(trigger_id, oco) == trigger_id
    recorded = fake_kite.last("PUT", f"/gtt/triggers/{trigger_id}")
    assert recorded.form_dict["type"] == "two-leg"
    assert json.loads(recorded.form_dict["condition"])["trigger_values"] == [1400, 1650.25]
    assert [o["price"] for o in json.loads(recorded.form_dict["orders"])] == [1399.5, 1650]
    assert kite.gtt(trigger_id).trigger_values == (Decimal("1400"), Decimal("1650.25"))

    assert kite.delete_gtt(trigger_id) == trigger_id
    assert_kite_headers(fake_kite.last("DELETE", f"/gtt/triggers/{trigger_id}"))
    assert kite.gtts() == ()


def test_gtt_request_checks_its_legs():
    with pytest.raises(ValueError):
        GttRequest("two-leg", "NSE", "INFY", (Decimal(1),), Decimal(2), (GttLeg("SELL", 1, Decimal(1)),))
    with pytest.raises(ValueError):
        GttRequest("three-leg", "NSE", "INFY", (Decimal(1),), Decimal(2), (GttLeg("SELL", 1, Decimal(1)),))


def test_instruments_stream_typed_rows(fake_kite, kite):
    rows = kite.instruments()

    first = next(rows)
    assert isinstance(first, KiteInstrument)
    assert (first.instrument_token, first.tradingsymbol, first.tick_size, first.expiry) == (
        408065,
        "INFY",
        Decimal("0.05"),
        None,
    )
    rest = list(rows)
    assert [r.tradingsymbol for r in rest] == ["RELIANCE", "NIFTY 50", "NIFTY26DEC24000CE"]
    option = rest[-1]
    assert (option.expiry, option.strike, option.lot_size, option.segment) == (
        date(2026, 12, 31),
        Decimal(24000),
        75,
        "NFO-OPT",
    )
    assert_kite_headers(fake_kite.last("GET", "/instruments"))


def test_instruments_of_one_exchange(fake_kite, kite):
    assert len(list(kite.instruments("NSE"))) == 4
    assert fake_kite.count("GET", "/instruments/NSE") == 1


def test_client_repr_hides_the_token(kite):
    assert fk.ACCESS_TOKEN not in repr(kite) and isinstance(kite, KiteClient)
