"""Fyers' order-update websocket (``wss://socket.fyers.in/trade/v3``) as a ``StreamDialect``, and its
order messages as ``BrokerUpdate``s.

From the fyers-apiv3 SDK (FyersWebsocket/order_ws.py and the Node SDK's ordersocket/mapper.js): the
handshake carries ``authorization: <app_id>:<access_token>``; the client subscribes with the text
``{"T": "SUB_ORD", "SLIST": ["orders"], "SUB_T": 1}`` and pings with the text "ping" every 10 s
(answered "pong"); each order change arrives as ``{"s": "ok", "orders": {...}}`` in Fyers' raw field
names: ``id``, ``org_ord_status`` (the status code), ``qty``, ``qty_filled``, ``qty_remaining``,
``price_traded``, ``oms_msg`` (or ``status_msg``), ``time_oms``, ``symbol``, ``fy_token``. The order's
tag is read from ``ordertag`` (the raw name third-party clients read; the SDK's mapper does not list
it: unverified). Messages about trades and positions are not needed (the order's filled quantity sends
it to reconciliation, which reads the trades) and are passed over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from brokers.adapters.base import BrokerUpdate
from brokers.families.stream import Decoded, MalformedFrame
from brokers.families.wire import message_of
from families.fyers.mapping import status_of, tag_of

IST = ZoneInfo("Asia/Kolkata")
SUBSCRIBE = json.dumps({"T": "SUB_ORD", "SLIST": ["orders"], "SUB_T": 1})
PING, PONG = "ping", "pong"
TIME_FORMATS = ("%d-%b-%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S")


class OrderDialect:
    family = "fyers"
    heartbeat_interval: float | None = 10.0

    def __init__(self, *, url: str, authorization: str) -> None:
        self._url, self._authorization = url, authorization

    def __repr__(self) -> str:  # never the token
        return f"OrderDialect({self._url!r})"

    def url(self) -> str:
        return self._url

    def headers(self) -> Mapping[str, str]:
        return {"authorization": self._authorization}

    def opening(self) -> Sequence[str]:
        return [SUBSCRIBE]

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str]:
        return []  # the order stream is the account's, not per instrument

    def heartbeat(self) -> str:
        return PING

    def decode(self, message: str | bytes) -> Decoded:
        if isinstance(message, bytes):
            try:
                message = message.decode()
            except UnicodeDecodeError:
                raise MalformedFrame("the order stream sends text") from None
        if message.strip() == PONG:
            return Decoded()
        try:
            payload = json.loads(message)
        except (ValueError, RecursionError):
            raise MalformedFrame("the order stream's message is not JSON") from None
        if not isinstance(payload, dict):
            raise MalformedFrame("the order stream's message is not an object")
        orders = payload.get("orders")
        if orders is None:
            return Decoded()  # trades, positions, general messages, subscription answers
        if not isinstance(orders, dict):
            raise MalformedFrame("an order message's 'orders' is not an object")
        return Decoded(orders=[payload])


def update_of(account_id: int, message: Mapping[str, Any], *, current: str = "OPEN") -> BrokerUpdate | None:
    """The BrokerUpdate one order message reports (its status and filled quantity, without trades), or
    None for an order without our tag. Raises ValueError for a message not in the documented shape."""
    order = message.get("orders", message)
    if not isinstance(order, Mapping):
        raise ValueError("an order message carries an object under 'orders'")
    order_id = order.get("id")
    if not isinstance(order_id, str | int) or isinstance(order_id, bool) or not str(order_id).strip():
        raise ValueError("an order message names its order ('id')")
    status = order.get("org_ord_status", order.get("status"))
    if isinstance(status, bool) or not isinstance(status, int):
        raise ValueError("an order message carries its status code")
    filled = order.get("qty_filled", order.get("filledQty", 0))
    if isinstance(filled, bool) or not isinstance(filled, int) or filled < 0:
        raise ValueError("an order message's filled quantity is a count")
    tag = tag_of(order.get("ordertag", order.get("orderTag")))
    if not tag:
        return None
    return BrokerUpdate(
        account_id=account_id,
        tag=tag,
        broker_order_id=str(order_id),
        status=status_of(status, current=current),
        ts=_time(order.get("time_oms", order.get("orderDateTime"))) or timezone.now(),
        message=message_of(order.get("oms_msg", order.get("status_msg", order.get("message"))), ""),
        filled_quantity=filled,
    )


def _time(value: object) -> datetime | None:
    """Fyers' "DD-MMM-YYYY hh:mm:ss" (IST) or epoch seconds, as an aware UTC datetime; None if unreadable."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**32:
        return datetime.fromtimestamp(value, tz=IST).astimezone(UTC)
    if isinstance(value, str):
        for fmt in TIME_FORMATS:
            try:
                return datetime.strptime(value.strip(), fmt).replace(tzinfo=IST).astimezone(UTC)
            except ValueError:
                continue
    return None
