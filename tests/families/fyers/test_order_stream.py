"""The order-update socket's dialect and its order messages as BrokerUpdates."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.families.stream import Decoded, MalformedFrame
from families.fyers.order_stream import OrderDialect, update_of

MESSAGE = {
    "s": "ok",
    "orders": {
        "id": "25080400000101",
        "org_ord_status": 2,
        "qty": 10,
        "qty_filled": 10,
        "qty_remaining": 0,
        "price_traded": 990.0,
        "oms_msg": "TRADE CONFIRMED",
        "time_oms": "04-Aug-2025 09:15:30",
        "ordertag": "1:a1b2c3d4e5f6a7b8c9d0",
        "symbol": "NSE:RELIANCE-EQ",
    },
}


def _dialect() -> OrderDialect:
    return OrderDialect(url="ws://127.0.0.1:1/trade/v3", authorization="APP-100:token")


def test_the_socket_is_opened_with_the_sdks_header_subscription_and_ping():
    dialect = _dialect()
    assert dialect.headers() == {"authorization": "APP-100:token"}
    assert [json.loads(m) for m in dialect.opening()] == [{"T": "SUB_ORD", "SLIST": ["orders"], "SUB_T": 1}]
    assert dialect.subscribe(["10100000002885"]) == [] and dialect.heartbeat() == "ping"


def test_order_messages_are_passed_on_and_the_rest_is_not():
    dialect = _dialect()
    assert dialect.decode(json.dumps(MESSAGE)).orders == [MESSAGE]
    assert dialect.decode(json.dumps(MESSAGE).encode()).orders == [MESSAGE]
    assert dialect.decode("pong") == Decoded()
    assert dialect.decode(json.dumps({"s": "ok", "trades": {"id": "1"}})) == Decoded()
    assert dialect.decode(json.dumps({"s": "ok", "code": 1605, "message": "Successfully subscribed"})) == Decoded()


@pytest.mark.parametrize("message", ["{not json", "[1]", json.dumps({"orders": [1]}), b"\xff\xfe"])
def test_a_message_not_in_the_documented_shape_is_malformed(message):
    with pytest.raises(MalformedFrame):
        _dialect().decode(message)


def test_an_order_message_is_the_orders_status_and_filled_quantity():
    update = update_of(7, MESSAGE)
    assert update is not None
    assert (update.account_id, update.tag, update.broker_order_id) == (7, "a1b2c3d4e5f6a7b8c9d0", "25080400000101")
    assert (update.status, update.filled_quantity, update.message) == ("FILLED", 10, "TRADE CONFIRMED")
    assert update.ts == datetime(2025, 8, 4, 3, 45, 30, tzinfo=UTC) and update.fill is None


def test_a_transit_status_keeps_the_current_one_and_an_untagged_order_is_not_ours():
    transit = {"orders": {**MESSAGE["orders"], "org_ord_status": 4, "qty_filled": 0}}
    assert update_of(7, transit, current="TRIGGER_PENDING").status == "TRIGGER_PENDING"
    assert update_of(7, {"orders": {**MESSAGE["orders"], "ordertag": "2:Untagged"}}) is None


@pytest.mark.parametrize(
    "orders",
    [
        {"org_ord_status": 2},
        {"id": "1", "org_ord_status": "2"},
        {"id": "1", "org_ord_status": 2, "qty_filled": -1},
        {"id": True, "org_ord_status": 2},
        [1, 2],
    ],
)
def test_an_order_message_without_its_documented_fields_is_a_value_error(orders):
    with pytest.raises(ValueError):
        update_of(7, {"orders": orders})


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: st.dictionaries(st.text(max_size=12), c, max_size=6),
        max_leaves=20,
    )
)
def test_any_message_is_an_update_none_or_a_value_error(message):
    if not isinstance(message, dict):
        message = {"orders": message}
    with contextlib.suppress(ValueError):
        update_of(7, message)


def test_the_handshakes_authorization_header_is_never_logged(caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="websockets.client")
    logging.getLogger("websockets.client").debug("> %s: %s", "authorization", "APP-100:secret-token")
    logging.getLogger("websockets.client").debug("> %s: %s", "Host", "socket.fyers.in")
    assert "secret-token" not in caplog.text and "[redacted]" in caplog.text and "socket.fyers.in" in caplog.text
