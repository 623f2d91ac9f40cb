"""Kite's errors and transport faults become the broker contract's typed errors, with Kite's message;
nothing that writes is retried; no secret reaches the logs."""

from __future__ import annotations

import logging
from decimal import Decimal

import httpx
import pytest

from brokers.adapters.base import (
    BrokerError,
    BrokerInsufficientMargin,
    BrokerMarketClosed,
    BrokerNotSent,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSegmentNotEnabled,
    BrokerSessionExpired,
    BrokerUnavailable,
    BrokerUnreachable,
)
from kite.client import KiteClient
from kite.records import KiteOrderParams
from tests.kite import fake_kite as fk


def order(**changes) -> KiteOrderParams:
    fields = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "quantity": 1,
        "product": "MIS",
        "order_type": "LIMIT",
        "price": Decimal("1490"),
        "tag": "t1",
    }
    return KiteOrderParams(**{**fields, **changes})


def place(kite: KiteClient) -> str:
    return kite.place_order("regular", order())


@pytest.mark.parametrize(
    ("status", "error_type", "message", "expected"),
    [
        (403, "TokenException", "Incorrect `api_key` or `access_token`.", BrokerSessionExpired),
        (400, "InputException", "Invalid `price`.", BrokerRejected),
        (500, "OrderException", "Order could not be placed: RMS rule violated.", BrokerRejected),
        (400, "UserException", "Your account is suspended.", BrokerRejected),
        (400, "HoldingException", "Insufficient holdings to sell INFY.", BrokerRejected),
        (403, "PermissionException", "Insufficient permission for that call.", BrokerRejected),
        (400, "MarginException", "Margin shortfall of Rs 4,200.", BrokerInsufficientMargin),
        (
            400,
            "InputException",
            "Insufficient funds. Required margin is 95417.84 but available margin is 74251.80.",
            BrokerInsufficientMargin,
        ),
        (
            400,
            "InputException",
            "Markets are closed right now. Use GTT for placing long standing orders instead.",
            BrokerMarketClosed,
        ),
        (500, "OrderException", "The NFO segment is not enabled for your account.", BrokerSegmentNotEnabled),
        (400, "InputException", "You are not enabled for trading in the MCX segment.", BrokerSegmentNotEnabled),
        (502, "NetworkException", "Gateway could not reach the OMS.", BrokerUnavailable),
        (502, "DataException", "Couldn't parse the OMS response.", BrokerUnavailable),
        (500, "GeneralException", "Something went wrong.", BrokerUnavailable),
        (400, "GeneralException", "Unclassified refusal.", BrokerRejected),
        (503, "BrandNewException", "A type Kite adds later.", BrokerUnavailable),
        (429, "NetworkException", "Too many requests", BrokerRateLimited),
    ],
)
def test_kite_errors_map_to_typed_errors_with_kites_message(fake_kite, kite, status, error_type, message, expected):
    fake_kite.fail(status=status, error_type=error_type, message=message, path="/orders")

    with pytest.raises(BrokerError) as caught:
        place(kite)

    assert type(caught.value) is expected
    assert caught.value.message == message
    assert caught.value.extra["http_status"] == status
    assert caught.value.extra["error_type"] == error_type
    assert fake_kite.count("POST", "/orders/regular") == 1


def test_errors_on_reads_are_typed_too(fake_kite, kite):
    fake_kite.fail(status=403, error_type="TokenException", message="Session expired", path="/portfolio")
    with pytest.raises(BrokerSessionExpired, match="Session expired"):
        kite.positions()


def test_an_expired_session_is_refused_as_kite_refuses_it(fake_kite, kite):
    fake_kite.access_token_valid = False
    with pytest.raises(BrokerSessionExpired, match="access_token"):
        kite.orders()


def test_a_wrong_checksum_is_a_session_error(fake_kite, make_client):
    with pytest.raises(BrokerSessionExpired, match="checksum"):
        make_client(access_token=None).generate_session(fk.REQUEST_TOKEN, "not-the-secret")


def test_429_without_a_body_is_rate_limited_and_not_sent(fake_kite, kite):
    fake_kite.fail(status=429, body=b"Too many requests", content_type="text/plain")
    with pytest.raises(BrokerRateLimited) as caught:
        place(kite)
    assert isinstance(caught.value, BrokerNotSent)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (502, b"<html>Bad gateway</html>", "text/html"),
        (503, b"", "application/json"),
        (500, b'{"status": "error"', "application/json"),
        (200, b'{"status": "success", "data": {"order_id": "1512', "application/json"),
        (200, b"not json at all", "application/json"),
        (200, b'{"status": "success"}', "application/json"),
        (200, b'["status", "success"]', "application/json"),
        (200, b'{"status": "success", "data": {"order_id": 151}}'[:-3], "application/json"),
        (200, b'{"status": "success", "data": {}}', "application/json"),
        (200, b'{"status": "success", "data": {"order_id": ""}}', "application/json"),
        (200, b'{"status": "success", "data": {"order_id": NaN}}', "application/json"),
        (200, b"order_id=1", "text/plain"),
    ],
)
def test_unusable_answers_to_a_placement_are_maybe_sent(fake_kite, kite, status, body, content_type):
    fake_kite.fail(status=status, body=body, content_type=content_type)

    with pytest.raises(BrokerUnavailable) as caught:
        place(kite)

    assert not isinstance(caught.value, BrokerNotSent)
    assert fake_kite.count("POST", "/orders/regular") == 1


def test_an_answer_lost_after_acceptance_is_unavailable_and_the_order_exists(fake_kite, make_client):
    kite = make_client(read=0.3)
    fake_kite.lose_answer(method="POST", path="/orders/regular")

    with pytest.raises(BrokerUnavailable, match="ReadTimeout"):
        place(kite)

    assert fake_kite.count("POST", "/orders/regular") == 1
    (accepted,) = fake_kite.orders.values()
    assert accepted["tag"] == "t1" and accepted["status"] == "OPEN"
    (found,) = [o for o in kite.orders() if o.tag == "t1"]
    assert found.order_id == accepted["order_id"]


def test_a_connection_dropped_after_acceptance_is_unavailable(fake_kite, kite):
    fake_kite.lose_answer(method="POST", drop=True)

    with pytest.raises(BrokerUnavailable, match=r"RemoteProtocolError|ReadError"):
        place(kite)

    assert len(fake_kite.orders) == 1
    assert fake_kite.count("POST", "/orders/regular") == 1


def test_a_connection_dropped_before_processing_is_still_maybe_sent(fake_kite, kite):
    order_id = place(kite)
    fake_kite.lose_answer(method="DELETE", drop=True, process=False)

    with pytest.raises(BrokerUnavailable):
        kite.cancel_order("regular", order_id)

    assert fake_kite.count("DELETE", f"/orders/regular/{order_id}") == 1
    assert fake_kite.orders[order_id]["status"] == "OPEN"


@pytest.mark.parametrize("fault", ["5xx", "drop", "hang"])
def test_writes_are_never_retried(fake_kite, make_client, fault):
    kite = make_client(read=0.3)
    order_id = place(kite)
    for method in ("POST", "PUT", "DELETE"):
        if fault == "5xx":
            fake_kite.fail(status=503, body=b"", method=method)
        else:
            fake_kite.lose_answer(method=method, drop=fault == "drop", process=False)
    with pytest.raises(BrokerUnavailable):
        kite.place_order("regular", order(tag="t2"))
    with pytest.raises(BrokerUnavailable):
        kite.modify_order("regular", order_id, price=Decimal("1491"))
    with pytest.raises(BrokerUnavailable):
        kite.cancel_order("regular", order_id)

    assert fake_kite.count("POST", "/orders/regular") == 2  # the first placement and the failed one
    assert fake_kite.count("PUT", f"/orders/regular/{order_id}") == 1
    assert fake_kite.count("DELETE", f"/orders/regular/{order_id}") == 1


def test_modify_or_cancel_of_an_unknown_order_is_order_not_found(fake_kite, kite):
    with pytest.raises(BrokerOrderNotFound, match="Order not found"):
        kite.cancel_order("regular", "999")
    with pytest.raises(BrokerOrderNotFound):
        kite.modify_order("regular", "999", price=Decimal("1"))
    with pytest.raises(BrokerOrderNotFound):
        kite.order_history("999")


def test_cancelling_a_completed_order_is_rejected(fake_kite, kite):
    order_id = kite.place_order("regular", order(order_type="MARKET", price=None))
    with pytest.raises(BrokerRejected, match="complete") as caught:
        kite.cancel_order("regular", order_id)
    assert type(caught.value) is BrokerRejected


def test_an_order_refused_for_funds_is_in_the_book_as_rejected(fake_kite, kite):
    fake_kite.cash = Decimal("100")
    order_id = place(kite)
    (rejected,) = kite.orders()
    assert (rejected.order_id, rejected.status) == (order_id, "REJECTED")
    assert rejected.status_message.startswith("Insufficient funds")


class CountingTransport(httpx.BaseTransport):
    def __init__(self, exc: type[httpx.HTTPError]) -> None:
        self.exc, self.calls = exc, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.exc("simulated", request=request)


def client_over(transport: httpx.BaseTransport, limiter) -> KiteClient:
    return KiteClient(
        fk.API_KEY, fk.ACCESS_TOKEN, root="http://kite.invalid", limiter=limiter, http=httpx.Client(transport=transport)
    )


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_not_connecting_is_unreachable_and_a_write_is_tried_once(limiter, exc):
    transport = CountingTransport(exc)
    with pytest.raises(BrokerUnreachable) as caught:
        client_over(transport, limiter).place_order("regular", order())
    assert isinstance(caught.value, BrokerNotSent)
    assert transport.calls == 1


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout])
def test_a_read_retries_once_when_it_could_not_connect(limiter, exc):
    transport = CountingTransport(exc)
    with pytest.raises(BrokerUnreachable):
        client_over(transport, limiter).orders()
    assert transport.calls == 2


@pytest.mark.parametrize(
    "exc", [httpx.WriteError, httpx.WriteTimeout, httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError]
)
def test_failures_after_sending_are_maybe_sent_and_never_retried(limiter, exc):
    transport = CountingTransport(exc)
    with pytest.raises(BrokerUnavailable):
        client_over(transport, limiter).place_order("regular", order())
    with pytest.raises(BrokerUnavailable):
        client_over(transport, limiter).orders()
    assert transport.calls == 2  # one placement, one read: neither retried


def test_a_refused_connection_to_a_closed_port_is_unreachable(limiter, http):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kite = KiteClient(
        fk.API_KEY, fk.ACCESS_TOKEN, root=f"http://127.0.0.1:{port}", limiter=limiter, http=httpx.Client()
    )
    with pytest.raises(BrokerUnreachable):
        kite.place_order("regular", order())


def test_instruments_errors_are_typed(fake_kite, kite):
    fake_kite.fail(status=403, error_type="TokenException", message="Session expired", path="/instruments")
    with pytest.raises(BrokerSessionExpired):
        list(kite.instruments())
    fake_kite.fail(status=200, body=b"a,b\n1,2\n", content_type="text/csv", path="/instruments")
    with pytest.raises(BrokerUnavailable, match="header"):
        list(kite.instruments())
    header = ",".join(fk.INSTRUMENTS_CSV.splitlines()[0].split(","))
    fake_kite.fail(status=200, body=f"{header}\n1,2,X\n".encode(), content_type="text/csv", path="/instruments")
    with pytest.raises(BrokerUnavailable, match="line 2"):
        list(kite.instruments())
    fake_kite.lose_answer(path="/instruments", drop=True, process=False)
    with pytest.raises(BrokerUnavailable):
        list(kite.instruments())


def test_no_secret_or_token_reaches_the_logs(fake_kite, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(access_token=None)

    session = client.generate_session(fk.REQUEST_TOKEN, fk.API_SECRET)
    logged_in = client.with_access_token(session.access_token)
    order_id = logged_in.place_order("regular", order())
    logged_in.cancel_order("regular", order_id)
    fake_kite.fail(status=403, error_type="TokenException", message="Session expired")
    with pytest.raises(BrokerSessionExpired):
        logged_in.orders()
    logged_in.invalidate_session()

    assert caplog.records, "the client and httpx log their requests"
    text = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__}" for r in caplog.records)
    checksum = fake_kite.last("POST", "/session/token").form_dict["checksum"]
    for secret in (fk.API_SECRET, fk.ACCESS_TOKEN, fk.REQUEST_TOKEN, fk.REFRESH_TOKEN, fk.PUBLIC_TOKEN, checksum):
        assert secret not in text
    assert "/session/token" in text  # the calls are logged, without their secrets
