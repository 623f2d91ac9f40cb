"""Upstox as a broker family: the broker contract over ``families.upstox.client.UpstoxClient`` for
one account and its session.

Instruments are named by Upstox's instrument key (``NSE_EQ|INE002A01018``), the token of the Upstox
mapping (``brokers.instrument_map``, written from the JSON master by ``master_rows``). Our order's
broker tag goes in Upstox's ``tag``, which its order book, trades and order updates carry back.
Orders are placed with ``slice: false`` (the order system slices an order itself), so Upstox
answers with one order id. Order updates arrive on the portfolio stream (``order_stream``), whose
messages ``update_from_stream`` turns into ``BrokerUpdate``s with the order's filled quantity (no
trades: the order system reads them through ``order_by_tag``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.utils import timezone

from brokers import catalogue
from brokers.adapters.base import (
    ALL_EXCHANGES,
    BrokerAdapter,
    BrokerFunds,
    BrokerHolding,
    BrokerModifyRequest,
    BrokerNotSent,
    BrokerOrder,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerPosition,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
    BrokerUpdate,
    Capabilities,
    Fill,
    Login,
    PlaceResult,
    SignIn,
)
from brokers.families.wire import PARSE_ERRORS, WireClient, malformed
from brokers.instrument_map import BrokerSymbol, broker_symbol_required, instrument_map
from brokers.margin import product_margin_rate
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import next_cutoff, session_end
from families.upstox import mapping
from families.upstox.client import BROKER_NAME, UpstoxClient, endpoints, token_answer
from marketdata.quotes import DepthLevel, Quote

IST = ZoneInfo("Asia/Kolkata")
FAMILY = "upstox"
CUTOFF_IST = "03:30"  # Upstox ends every access token at 03:30 IST the next morning
MIS_LEVERAGE, FO_MARGIN_PCT = 5, 15  # the ledger's estimate; Upstox's RMS has the final word
MAX_QUOTE_KEYS = 500
_CODE = re.compile(r"[A-Za-z0-9_.~-]{1,512}")
_ORDER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class UpstoxAdapter(BrokerAdapter):
    """One account at an Upstox-family broker."""

    code: ClassVar[str] = FAMILY
    capabilities: ClassVar[Capabilities] = Capabilities(
        exchanges=ALL_EXCHANGES,
        order_types=mapping.ORDER_TYPES,
        products=frozenset(mapping.PRODUCTS),
        validities=mapping.VALIDITIES,
        varieties=frozenset({"regular"}),
        gtt=False,
        market_protection=False,
        max_modifications=None,
        tag_length=20,
    )
    login: ClassVar[Login | None] = Login(
        kind="redirect", credentials=("api_key", "api_secret", "redirect_uri"), expires_at_ist=CUTOFF_IST
    )

    def __init__(self, *, account_id: int, client: UpstoxClient) -> None:
        super().__init__(account_id=account_id)
        self.client = client

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> UpstoxAdapter:
        client = UpstoxClient(
            broker=account.broker,
            access_token=(session or {}).get("access_token", ""),
            limit_key=f"account:{account.pk}",
        )
        return cls(account_id=account.pk, client=client)

    # --- the daily login ------------------------------------------------------------------------
    @classmethod
    def login_start(cls, account: Any, *, state: str) -> str:
        """Upstox's authorization dialog for the account's app (``client_id`` = its API key), which
        sends the user back to ``redirect_uri`` with ``code`` and ``state``. Raises ValueError when the
        account's API key or redirect URI is not stored."""
        credentials = broker_credentials_get(account=account)
        api_key, redirect_uri = credentials.get("api_key", ""), credentials.get("redirect_uri", "")
        if not api_key or not redirect_uri:
            raise ValueError("Store the account's Upstox API key, secret and redirect URI first.")
        query = urlencode({"response_type": "code", "client_id": api_key, "redirect_uri": redirect_uri, "state": state})
        return f"{catalogue.endpoint(account.broker, 'login')}?{query}"

    @classmethod
    def login_finish(cls, account: Any, params: Mapping[str, str]) -> SignIn:
        """Exchange the redirect's ``code`` for an access token (form: code, client_id, client_secret,
        redirect_uri, grant_type=authorization_code); the session ends at 03:30 IST. Raises ValueError
        for a callback without a well-formed code, BrokerError when Upstox refuses."""
        code = params.get("code", "")
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise ValueError("Upstox did not complete the sign-in.")
        credentials = broker_credentials_get(account=account)
        if not all(credentials.get(name) for name in ("api_key", "api_secret", "redirect_uri")):
            raise ValueError("Store the account's Upstox API key, secret and redirect URI first.")
        wire = WireClient(
            broker=BROKER_NAME,
            root=catalogue.endpoint(account.broker, "api"),
            answer=token_answer,
            limit_key=f"account:{account.pk}",
            headers=lambda: {"Accept": "application/json", "Api-Version": "2.0"},
        )
        data = wire.call(
            endpoints(account.broker)["token"],
            form={
                "code": code,
                "client_id": credentials["api_key"],
                "client_secret": credentials["api_secret"],
                "redirect_uri": credentials["redirect_uri"],
                "grant_type": "authorization_code",
            },
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise malformed(BROKER_NAME, "the token exchange")
        user = data.get("user_id")
        return SignIn(
            secrets={"access_token": token},
            expires_at=next_cutoff(timezone.now(), CUTOFF_IST),
            broker_user=user[:40] if isinstance(user, str) else "",
        )

    # --- writes ---------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Send the order to ``/v3/order/place`` tagged with its broker tag; return Upstox's order id
        with OPEN (its status follows on the portfolio stream). Raises BrokerRejected
        ``broker_instrument_not_mapped`` (not sent) for an instrument the Upstox master lacks."""
        symbol = upstox_symbol(request.instrument_id, what=f"{request.exchange}:{request.tradingsymbol}")
        data = self._call(lambda: self.client.place(place_body(request, symbol)))
        return PlaceResult(broker_order_id=self.client.parse("the placed order", _placed_id, data), status="OPEN")

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Upstox's modify takes the order's whole terms (validity, price, order type and trigger are
        required), so the order's current terms are read first (``/v2/order/details``) and the change
        laid over them. A failed read sends nothing (BrokerNotSent)."""
        order_id = _order_id(broker_order_id)
        try:
            current = self._call(lambda: self.client.get("order_details", {"order_id": order_id}, order_specific=True))
        except BrokerUnavailable as error:
            raise BrokerNotSent(
                f"Upstox did not answer the read of the order's terms, so the change was not sent: {error.message}",
                extra={"broker_order_id": order_id},
            ) from error
        try:
            body = modify_body(order_id, current, change)
        except PARSE_ERRORS as error:
            raise BrokerNotSent(
                "Upstox's answer with the order's terms was not in the documented shape: the change was not sent.",
                extra={"broker_order_id": order_id},
            ) from error
        self._call(lambda: self.client.modify(body))

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """``DELETE /v3/order/cancel?order_id=``; the cancellation follows on the portfolio stream."""
        order_id = _order_id(broker_order_id)
        self._call(lambda: self.client.cancel(order_id))

    # --- reads ----------------------------------------------------------------------------------
    def order_book(self) -> list[BrokerOrder]:
        """The day's orders with their fills (the trade book, read once)."""
        fills: dict[str, list[Fill]] = defaultdict(list)
        for fill in self.trades():
            fills[fill.broker_order_id].append(fill)
        rows = self._call(lambda: self.client.get("orders"))
        return self.client.parse(
            "the order book", lambda d: [order_of(o, fills.get(o["order_id"], [])) for o in d], rows
        )

    def order_by_tag(self, tag: str) -> BrokerOrder | None:
        rows = self._call(lambda: self.client.get("orders"))
        found = self.client.parse("the order book", lambda d: [o for o in d if o.get("tag") == tag], rows)
        if not found:
            return None
        order = found[-1]
        trades = self._call(lambda: self.client.get("order_trades", {"order_id": _order_id(str(order["order_id"]))}))
        fills = self.client.parse("the order's trades", lambda d: [fill_of(t) for t in d], trades)
        return self.client.parse("the order", lambda o: order_of(o, fills), order)

    def trades(self) -> list[Fill]:
        rows = self._call(lambda: self.client.get("trades"))
        return self.client.parse("the trade book", lambda d: [fill_of(t) for t in d], rows)

    def positions(self) -> list[BrokerPosition]:
        rows = self._call(lambda: self.client.get("positions"))
        by_token = instrument_map(FAMILY).by_token

        def parse(data: list[dict[str, Any]]) -> list[BrokerPosition]:
            out = []
            for p in data:
                instrument_id = by_token.get(str(p["instrument_token"]))
                quantity = _int(p["quantity"])
                if instrument_id is None or not quantity:
                    continue
                segment = mapping.segment_of(str(p["instrument_token"]))
                out.append(
                    BrokerPosition(
                        instrument_id=instrument_id,
                        product=mapping.product_of(str(p["product"]), segment),
                        net_quantity=quantity,
                        average_price=_price(p.get("average_price")),
                    )
                )
            return out

        return self.client.parse("the positions", parse, rows)

    def holdings(self) -> list[BrokerHolding]:
        rows = self._call(lambda: self.client.get("holdings"))
        by_token = instrument_map(FAMILY).by_token

        def parse(data: list[dict[str, Any]]) -> list[BrokerHolding]:
            out = []
            for h in data:
                instrument_id = by_token.get(str(h["instrument_token"]))
                quantity = _int(h["quantity"])
                if instrument_id is None or not quantity:
                    continue
                average = _price(h.get("average_price")) or Decimal(0)
                out.append(BrokerHolding(instrument_id=instrument_id, quantity=quantity, average_price=average))
            return out

        return self.client.parse("the holdings", parse, rows)

    def funds(self) -> BrokerFunds:
        """The equity segment's funds: available margin, used margin, and the cash (available + used)."""
        data = self._call(lambda: self.client.get("funds"))

        def parse(d: dict[str, Any]) -> BrokerFunds:
            equity = d["equity"]
            available, used = _decimal(equity["available_margin"]), _decimal(equity["used_margin"])
            extra = {"payin_amount": _decimal(equity.get("payin_amount") or 0)}
            return BrokerFunds(cash=available + used, margin_used=used, available=available, extra=extra)

        return self.client.parse("the funds", parse, data)

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        """The full market quote of our instruments by their instrument keys (``/v2/market-quote/quotes``),
        at most 500 a call."""
        mapped = instrument_map(FAMILY).by_instrument
        keys = {s.token: pk for pk in instrument_ids if (s := mapped.get(pk)) is not None}
        quotes: dict[int, Quote] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), MAX_QUOTE_KEYS):
            chunk = ordered[start : start + MAX_QUOTE_KEYS]
            data = self._call(lambda chunk=chunk: self.client.get("quote", {"symbol": ",".join(chunk)}))
            quotes.update(self.client.parse("the quotes", lambda d: _quotes(d, keys), data))
        return quotes

    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        return product_margin_rate(
            product=product,
            instrument_type=instrument_type,
            side=side,
            mis_leverage=MIS_LEVERAGE,
            fo_margin_pct=FO_MARGIN_PCT,
        )

    # --- streams and the master -----------------------------------------------------------------
    @classmethod
    def market_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        from families.upstox.stream import MarketDialect

        return MarketDialect(broker=account.broker, access_token=session.get("access_token", ""))

    @classmethod
    def order_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        from families.upstox.stream import PortfolioDialect

        return PortfolioDialect(broker=account.broker, access_token=session.get("access_token", ""))

    @classmethod
    def update_from_stream(cls, account_id: int, message: Mapping[str, Any]) -> BrokerUpdate | None:
        """One portfolio-stream (or webhook) message as a BrokerUpdate: None for a message that is not
        an order update, or an order without our tag. Raises ValueError for an order update not in
        Upstox's documented shape."""
        if not isinstance(message, Mapping) or message.get("update_type", "order") != "order":
            return None
        try:
            tag = message.get("tag")
            order_id, status = message["order_id"], message["status"]
            if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id) or not isinstance(status, str):
                raise ValueError("order_id and status must be text")
            filled = _int(message.get("filled_quantity") or 0)
            stamp = upstox_time(message.get("exchange_timestamp")) or upstox_time(message.get("order_timestamp"))
            text = message.get("status_message")
        except (KeyError, TypeError, ArithmeticError) as error:
            raise ValueError(f"not an Upstox order update: {type(error).__name__}") from error
        if not isinstance(tag, str) or not tag:
            return None
        return BrokerUpdate(
            account_id=account_id,
            tag=tag,
            broker_order_id=order_id,
            status=mapping.status_of(status, current="OPEN"),
            ts=stamp or timezone.now(),
            message=text[:500] if isinstance(text, str) else "",
            filled_quantity=filled,
        )

    @classmethod
    def master_rows(cls, broker: str) -> Iterable[Any]:
        from families.upstox.master import download_master, parse_master

        return parse_master(download_master(broker))

    # --- internals ------------------------------------------------------------------------------
    def _call(self, call: Any) -> Any:
        """Run one call; a token Upstox refuses also ends the account's session here, so pages show it
        lapsed and orders are refused before sending until the trader signs in again."""
        try:
            return call()
        except BrokerSessionExpired as error:
            session_end(account_id=self.account_id, reason=f"Upstox: {error.message}"[:200])
            raise


# --- request building -------------------------------------------------------------------------------
def place_body(request: BrokerOrderRequest, symbol: BrokerSymbol) -> dict[str, Any]:
    """The ``/v3/order/place`` body for ``request`` (every field the API requires, numbers as numbers).
    Raises BrokerRejected (not sent) for a value Upstox has no word for."""
    if request.product not in mapping.PRODUCTS:
        raise _unsupported("product", request.product)
    if request.order_type not in mapping.ORDER_TYPES:
        raise _unsupported("order type", request.order_type)
    if request.validity not in mapping.VALIDITIES:
        raise _unsupported("validity", request.validity)
    if request.side not in mapping.SIDES:
        raise _unsupported("side", request.side)
    if request.variety != "regular":
        raise _unsupported("variety", request.variety)
    limit = request.order_type in {"LIMIT", "SL"}
    stop = request.order_type in {"SL", "SL-M"}
    if (limit and request.price is None) or (stop and request.trigger_price is None):
        raise BrokerRejected(
            f"A {request.order_type} order needs its {'price' if limit and request.price is None else 'trigger price'}:"
            " nothing was sent.",
            code="broker_order_incomplete",
        )
    return {
        "quantity": int(request.quantity),
        "product": mapping.PRODUCTS[request.product],
        "validity": request.validity,
        "price": _number(request.price) if limit else 0,
        "tag": request.tag,
        "slice": False,
        "instrument_token": symbol.token,
        "order_type": request.order_type,
        "transaction_type": request.side,
        "disclosed_quantity": 0,
        "trigger_price": _number(request.trigger_price) if stop else 0,
        "is_amo": False,
    }


def modify_body(order_id: str, current: Mapping[str, Any], change: BrokerModifyRequest) -> dict[str, Any]:
    """The ``/v3/order/modify`` body: the order's current terms (``/v2/order/details``) with ``change``
    laid over them."""
    order_type = change.order_type or str(current["order_type"])
    if order_type not in mapping.ORDER_TYPES:
        raise ValueError(f"order type {order_type!r}")
    validity = str(current["validity"])
    if validity not in mapping.VALIDITIES:
        raise ValueError(f"validity {validity!r}")
    price = change.price if change.price is not None else _price(current.get("price"))
    trigger = change.trigger_price if change.trigger_price is not None else _price(current.get("trigger_price"))
    quantity = change.quantity if change.quantity is not None else _int(current["quantity"])
    return {
        "quantity": int(quantity),
        "validity": validity,
        "price": _number(price) if order_type in {"LIMIT", "SL"} and price is not None else 0,
        "order_id": order_id,
        "order_type": order_type,
        "disclosed_quantity": 0,
        "trigger_price": _number(trigger) if order_type in {"SL", "SL-M"} and trigger is not None else 0,
    }


# --- answer reading -----------------------------------------------------------------------------------
def order_of(order: Mapping[str, Any], fills: list[Fill]) -> BrokerOrder:
    """One order-book (or order-details) entry as a BrokerOrder."""
    order_type = str(order["order_type"])
    tag = order.get("tag")
    message = order.get("status_message")
    return BrokerOrder(
        tag=tag if isinstance(tag, str) else "",
        broker_order_id=str(order["order_id"]),
        status=mapping.status_of(str(order["status"]), current="OPEN"),
        quantity=_int(order["quantity"]),
        filled_quantity=_int(order.get("filled_quantity") or 0),
        average_price=_price(order.get("average_price")),
        fills=tuple(fills),
        message=message[:500] if isinstance(message, str) else "",
        order_type=order_type,
        price=_price(order.get("price")) if order_type in {"LIMIT", "SL"} else None,
        trigger_price=_price(order.get("trigger_price")) if order_type in {"SL", "SL-M"} else None,
    )


def fill_of(trade: Mapping[str, Any]) -> Fill:
    """One trade-book entry as a Fill (the exchange's trade id, unique within its exchange)."""
    quantity = _int(trade["quantity"])
    price = _decimal(trade["average_price"])
    if quantity <= 0 or price <= 0:
        raise ValueError("a trade has a positive quantity and price")
    segment = str(trade.get("exchange") or "")
    exchange = mapping.EXCHANGES.get(segment, segment)
    if not exchange and trade.get("instrument_token"):
        exchange = mapping.EXCHANGES[mapping.segment_of(str(trade["instrument_token"]))]
    return Fill(
        trade_id=str(trade["trade_id"]),
        quantity=quantity,
        price=price,
        ts=upstox_time(trade.get("exchange_timestamp")) or upstox_time(trade.get("order_timestamp")) or timezone.now(),
        broker_order_id=str(trade["order_id"]),
        exchange=exchange,
    )


def _quotes(data: Mapping[str, Any], keys: Mapping[str, int]) -> dict[int, Quote]:
    """``/v2/market-quote/quotes`` data (keyed by ``NSE_EQ:RELIANCE``, each naming its instrument key)."""
    now = timezone.now()
    out: dict[int, Quote] = {}
    for value in data.values():
        instrument_id = keys.get(str(value.get("instrument_token")))
        ltp = _price(value.get("last_price"))
        if instrument_id is None or ltp is None:
            continue
        depth = value.get("depth") or {}
        bids = tuple(_level(level) for level in depth.get("buy") or () if _price(level.get("price")))
        asks = tuple(_level(level) for level in depth.get("sell") or () if _price(level.get("price")))
        ohlc = value.get("ohlc") or {}
        out[instrument_id] = Quote(
            instrument_id=instrument_id,
            ltp=ltp,
            ts=now,
            bid=bids[0].price if bids else None,
            ask=asks[0].price if asks else None,
            bid_qty=bids[0].quantity if bids else 0,
            ask_qty=asks[0].quantity if asks else 0,
            volume=_int(value.get("volume") or 0),
            oi=_int(value.get("oi") or 0),
            open=_price(ohlc.get("open")),
            high=_price(ohlc.get("high")),
            low=_price(ohlc.get("low")),
            close=_price(ohlc.get("close")),
            bids=bids,
            asks=asks,
        )
    return out


def _level(level: Mapping[str, Any]) -> DepthLevel:
    return DepthLevel(_decimal(level["price"]), _int(level.get("quantity") or 0), _int(level.get("orders") or 1))


def _placed_id(data: Mapping[str, Any]) -> str:
    """The order id of a v3 placement (``order_ids``, one since ``slice`` is false)."""
    ids = data.get("order_ids")
    order_id = ids[0] if isinstance(ids, list) and ids else data.get("order_id")
    if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
        raise ValueError("no order id")
    return order_id


def upstox_time(value: Any) -> datetime | None:
    """An Upstox timestamp (``2024-02-21 14:40:02`` in IST, or ISO 8601) as an aware UTC datetime;
    None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=IST)
    return parsed.astimezone(UTC)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise TypeError("not a whole number")
    number = Decimal(value) if not isinstance(value, int) else value
    if isinstance(number, Decimal) and (not number.is_finite() or number != number.to_integral_value()):
        raise ValueError("not a whole number")
    return int(number)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise TypeError("not a number")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError("not a finite number")
    return number


def _price(value: Any) -> Decimal | None:
    """A price, None for absent or zero (Upstox writes 0 or null where there is none)."""
    if value is None:
        return None
    number = _decimal(value)
    return number if number > 0 else None


def _number(value: Decimal | None) -> float | int:
    """A price as the JSON number Upstox reads (a float type in its API)."""
    if value is None:
        return 0
    return float(value)


def _order_id(value: str) -> str:
    if not isinstance(value, str) or not _ORDER_ID.fullmatch(value):
        raise BrokerOrderNotFound(
            f"Upstox has no order {str(value)[:40]!r}.", extra={"broker_order_id": str(value)[:40]}
        )
    return value


def _unsupported(what: str, value: str) -> BrokerRejected:
    return BrokerRejected(
        f"Upstox takes no {what} {value!r}: nothing was sent.", code="broker_unsupported", extra={what: value}
    )


def upstox_symbol(instrument_id: int, *, what: str) -> BrokerSymbol:
    """Upstox's instrument key (and trading symbol) for our instrument, from the Upstox mapping.
    Raises BrokerRejected ``broker_instrument_not_mapped`` (nothing sent) when the master lacks it."""
    return broker_symbol_required(
        broker=FAMILY, instrument_id=instrument_id, what=what, master="Upstox's instruments list (no Upstox mapping)"
    )
