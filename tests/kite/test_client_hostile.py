"""Hostile and malformed answers: whatever Kite (or something in its place) sends, every client call
returns its typed value or raises one of the broker contract's errors, never anything else."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.adapters.base import BrokerError, BrokerRateLimited, BrokerUnavailable
from kite.client import KiteClient
from kite.errors import unwrap
from kite.records import GttLeg, GttRequest, KiteOrderParams
from tests.kite import fake_kite as fk

PARAMS = KiteOrderParams("NSE", "INFY", "BUY", 1, "MIS", "LIMIT", price=Decimal("1490"), tag="h1")
GTT = GttRequest.single(
    exchange="NSE",
    tradingsymbol="INFY",
    trigger_value=Decimal("1400"),
    last_price=Decimal("1500"),
    leg=GttLeg("SELL", 1, Decimal("1399")),
)

CALLS = {
    "generate_session": lambda k: k.generate_session(fk.REQUEST_TOKEN, fk.API_SECRET),
    "invalidate_session": lambda k: k.invalidate_session(),
    "profile": lambda k: k.profile(),
    "place_order": lambda k: k.place_order("regular", PARAMS),
    "modify_order": lambda k: k.modify_order("regular", "1", price=Decimal("1")),
    "cancel_order": lambda k: k.cancel_order("regular", "1"),
    "orders": lambda k: k.orders(),
    "order_history": lambda k: k.order_history("1"),
    "trades": lambda k: k.trades(),
    "order_trades": lambda k: k.order_trades("1"),
    "positions": lambda k: k.positions(),
    "holdings": lambda k: k.holdings(),
    "margins": lambda k: k.margins(),
    "segment_margins": lambda k: k.segment_margins("equity"),
    "quote": lambda k: k.quote(["NSE:INFY"]),
    "ltp": lambda k: k.ltp(["NSE:INFY"]),
    "ohlc": lambda k: k.ohlc(["NSE:INFY"]),
    "place_gtt": lambda k: k.place_gtt(GTT),
    "modify_gtt": lambda k: k.modify_gtt(1, GTT),
    "delete_gtt": lambda k: k.delete_gtt(1),
    "gtts": lambda k: k.gtts(),
    "gtt": lambda k: k.gtt(1),
    "instruments": lambda k: list(k.instruments()),
}


class Unlimited:
    def acquire(self, key, limits) -> None:
        pass


def client_answering(status: int, body: bytes, content_type: str) -> KiteClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    return KiteClient(
        fk.API_KEY,
        fk.ACCESS_TOKEN,
        root="http://kite.test",
        limiter=Unlimited(),
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def only_typed(client: KiteClient, call: str) -> None:
    with contextlib.suppress(BrokerError):
        CALLS[call](client)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=6),
    max_leaves=25,
)

ORDER_KEYS = ["order_id", "status", "quantity", "price", "average_price", "order_timestamp", "tag", "tags"]
QUOTE_KEYS = ["instrument_token", "last_price", "ohlc", "depth", "timestamp", "volume"]
GTT_KEYS = ["id", "type", "status", "condition", "orders", "trigger_id", "created_at"]
SESSION_KEYS = ["user_id", "access_token", "login_time", "exchanges", "net", "day", "equity", "available"]


def plausible_objects():
    """Objects with the right keys and hostile values: they get past the first KeyError."""
    keys = st.sampled_from(ORDER_KEYS + QUOTE_KEYS + GTT_KEYS + SESSION_KEYS + ["trade_id", "NSE:INFY"])
    return st.dictionaries(keys, json_values, max_size=10)


plausible_data = st.one_of(
    json_values,
    plausible_objects(),
    st.lists(plausible_objects(), max_size=3),
    st.dictionaries(
        st.sampled_from(["net", "day", "equity", "commodity", "NSE:INFY"]), plausible_objects(), max_size=3
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    call=st.sampled_from(sorted(CALLS)),
    status=st.sampled_from([200, 201, 204, 301, 400, 403, 404, 429, 500, 502, 503, 504]),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/html", "text/csv", ""]),
    body=st.binary(max_size=200),
)
def test_random_bytes_give_typed_errors(call, status, content_type, body):
    only_typed(client_answering(status, body, content_type), call)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=st.sampled_from(sorted(CALLS)), data=plausible_data, status=st.sampled_from([200, 400, 500]))
def test_hostile_success_envelopes_give_typed_values_or_errors(call, data, status):
    body = json.dumps({"status": "success", "data": data}).encode()
    only_typed(client_answering(status, body, "application/json"), call)


@settings(max_examples=100, deadline=None)
@given(
    call=st.sampled_from(sorted(CALLS)),
    envelope=st.dictionaries(
        st.sampled_from(["status", "message", "error_type", "data"]),
        json_values | st.sampled_from(["error", "success", "TokenException", "InputException", "OrderException"]),
        max_size=4,
    ),
    status=st.sampled_from([200, 400, 403, 429, 500, 503]),
)
def test_hostile_error_envelopes_give_typed_errors(call, envelope, status):
    only_typed(client_answering(status, json.dumps(envelope).encode(), "application/json"), call)


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=300))
def test_hostile_instrument_dumps_give_typed_errors(body):
    header = ",".join(fk.INSTRUMENTS_CSV.splitlines()[0].split(","))
    for content in (body, header + "\n" + body):
        only_typed(client_answering(200, content.encode(), "text/csv"), "instruments")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"status": "success", "data": ' + b"[" * 50_000,
        b'{"status": "success", "data": {"order_id": 1e999999}}',
        b'{"status": "success", "data": {"order_id": "1", "quantity": 1e999999}}',
        b'{"status": "success", "data": [{"order_id": "1", "status": "OPEN", "quantity": 1e999999}]}',
        b'{"status": "success", "data": [{"order_id": "1", "status": "OPEN", "quantity": ' + b"9" * 5000 + b"}]}",
        b'{"status": "success", "data": [{"order_id": "1", "status": "OPEN", "price": Infinity}]}',
        b'{"status": "success", "data": [{"order_id": "1", "status": "OPEN", "order_timestamp": "2026-13-45 99:99"}]}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_pathological_bodies(body):
    for call in CALLS:
        only_typed(client_answering(200, body, "application/json"), call)
    with pytest.raises(BrokerError):
        CALLS["orders"](client_answering(200, body, "application/json"))


def test_a_placement_whose_answer_is_unusable_is_unavailable_not_rejected():
    for body in (b'{"status": "success", "data": {"order_id": null}}', b'{"status": "success", "data": []}'):
        with pytest.raises(BrokerUnavailable):
            CALLS["place_order"](client_answering(200, body, "application/json"))


def test_429_is_rate_limited_whatever_the_body():
    for body in (b"", b"<html>", b'{"status": "success", "data": {"order_id": "1"}}'):
        with pytest.raises(BrokerRateLimited):
            unwrap(429, "application/json", body)
