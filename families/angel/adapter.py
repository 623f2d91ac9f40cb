"""Angel One SmartAPI as a broker family: the broker contract over ``families.angel.client``.

An adapter is one account's: its API key from the account's sealed credentials, its JWT from the
account's live session, its rate limits counted per account, its hosts and limits from its broker's
registry entry (``brokers.catalogue``: the account's ``broker``, e.g. "angelone"). Angel names an order
by its ``ordertag`` (our ``Order.broker_tag``, at most 20 characters: Angel refuses a longer one with
AB4008) in the order book and the order updates. Angel's updates carry an order's filled quantity, not
its trades, so updates built from them carry ``filled_quantity`` and the order system fetches the
trades through ``order_by_tag``.

A modification must restate the order (variety, order type, product, duration, price, quantity,
symbol, token, exchange: all mandatory in modifyOrder), so ``modify_order`` reads the order book for
the terms Angel holds now and changes only what the request changes. A cancellation names the order's
Angel variety (NORMAL, STOPLOSS or AMO), which this process remembers for the orders it placed or
read; for another it reads the order book.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from django.utils import timezone

from brokers.adapters.base import (
    BrokerAdapter,
    BrokerFunds,
    BrokerHolding,
    BrokerModifyRequest,
    BrokerOrder,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerPosition,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUpdate,
    Capabilities,
    Fill,
    Login,
    PlaceResult,
    SignIn,
)
from brokers.families.login import totp_now
from brokers.families.master import MasterRow
from brokers.instrument_map import BrokerSymbol, broker_symbol_required, instrument_map
from brokers.margin import product_margin_rate
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import next_cutoff, session_end
from families.angel import records
from families.angel.client import AngelClient
from families.angel.mapping import (
    EXCHANGES,
    FAMILY,
    ORDER_TYPES,
    OUR_ORDER_TYPES,
    OUR_PRODUCTS,
    PRICED_TYPES,
    PRODUCTS,
    SIDES,
    STOP_TYPES,
    VALIDITIES,
    VARIETY_AMO,
    amount,
    is_transitional,
    split_token,
    status_of,
    token_key,
    variety_for,
)
from marketdata.quotes import DepthLevel, Quote

CUTOFF_IST = "00:00"  # Angel ends every session at midnight in India
MIS_LEVERAGE, FO_MARGIN_PCT = 5, 15  # the ledger's estimate (Angel's RMS has the final word)
QUOTE_BATCH = 50  # market/v1/quote takes at most 50 tokens a request
_CREDENTIALS = ("api_key", "pin", "totp_secret")


class _Varieties:
    """Angel's variety of the orders this process placed or read (for cancelOrder), bounded."""

    def __init__(self, size: int = 10_000) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._size, self._lock = size, threading.Lock()

    def put(self, orderid: str, variety: str) -> None:
        with self._lock:
            self._items[orderid] = variety
            self._items.move_to_end(orderid)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, orderid: str) -> str | None:
        with self._lock:
            return self._items.get(orderid)


_varieties = _Varieties()


class AngelAdapter(BrokerAdapter):
    """One account at an Angel One broker through SmartAPI."""

    code: ClassVar[str] = FAMILY
    capabilities: ClassVar[Capabilities] = Capabilities(
        exchanges=frozenset(EXCHANGES),
        order_types=frozenset(ORDER_TYPES),
        products=frozenset(PRODUCTS),
        validities=frozenset(VALIDITIES),
        varieties=frozenset({"regular", "amo"}),
        gtt=False,
        market_protection=False,
        tag_length=20,
    )
    login: ClassVar[Login | None] = Login(kind="totp", credentials=_CREDENTIALS, expires_at_ist=CUTOFF_IST)

    def __init__(self, *, account_id: int, client: AngelClient) -> None:
        super().__init__(account_id=account_id)
        self.client = client

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> AngelAdapter:
        credentials = broker_credentials_get(account=account)
        client = AngelClient(
            broker=account.broker,
            api_key=credentials.get("api_key", ""),
            jwt_token=(session or {}).get("jwt_token"),
            limit_key=f"account:{account.pk}",
        )
        return cls(account_id=account.pk, client=client)

    # --- the daily login -------------------------------------------------------------------------
    @classmethod
    def login_direct(cls, account: Any) -> SignIn:
        """Sign in with the account's client code, PIN and the TOTP of its stored secret
        (loginByPassword); the session (JWT, refresh and feed tokens) ends at midnight IST. Raises
        ValueError for credentials missing or malformed, BrokerRejected when Angel refuses them,
        else as any call does."""
        credentials = broker_credentials_get(account=account)
        missing = [name for name in _CREDENTIALS if not credentials.get(name, "").strip()]
        if missing or not (account.client_code or "").strip():
            what = ", ".join(missing + ([] if (account.client_code or "").strip() else ["client code"]))
            raise ValueError(f"Store the account's Angel One {what} first.")
        totp = totp_now(credentials["totp_secret"])
        client = AngelClient(
            broker=account.broker, api_key=credentials["api_key"].strip(), limit_key=f"account:{account.pk}"
        )
        body = {"clientcode": account.client_code.strip(), "password": credentials["pin"].strip(), "totp": totp}
        data = client.call("login", body)
        tokens = client.parse("login", _session_tokens, data)
        return SignIn(
            secrets=tokens,
            expires_at=next_cutoff(timezone.now(), CUTOFF_IST),
            broker_user=account.client_code.strip(),
        )

    # --- streams and the master ------------------------------------------------------------------
    @classmethod
    def market_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        from families.angel.stream import AngelMarketDialect

        return AngelMarketDialect.for_account(account, session)

    @classmethod
    def order_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        from families.angel.stream import AngelOrderDialect

        return AngelOrderDialect.for_account(account, session)

    @classmethod
    def update_from_stream(cls, account_id: int, message: Mapping[str, Any]) -> BrokerUpdate | None:
        """One message of Angel's order-update websocket (``{"user-id", "status-code", "order-status",
        "error-message", "orderData": {...}}``) as a BrokerUpdate of its order: its status and filled
        quantity. None for one about no order of ours (no ``ordertag``: the connection's greeting, an
        order placed elsewhere) or in a transitional status. Raises ValueError for a message not in
        that shape."""
        if not isinstance(message, Mapping) or not isinstance(message.get("orderData"), Mapping):
            raise ValueError("an Angel order update carries orderData")
        data = message["orderData"]
        if not records.text(data, "ordertag"):
            return None
        try:
            order = records.order_from(data)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"an Angel order update not in the documented shape: {exc}") from None
        if is_transitional(order.status):
            return None
        return BrokerUpdate(
            account_id=account_id,
            tag=order.ordertag,
            broker_order_id=order.orderid,
            status=status_of(order.status, current="OPEN"),
            ts=order.updated_at or timezone.now(),
            message=order.text[:500],
            filled_quantity=order.filledshares,
        )

    @classmethod
    def master_rows(cls, broker: str) -> Iterable[MasterRow | tuple[int, str]]:
        from families.angel.master import download_master, parse_master

        return parse_master(download_master(broker))

    # --- writes ----------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Send the order tagged with its broker tag; return Angel's order id with OPEN (Angel's
        status follows on the order-update stream). Raises BrokerRejected
        ``broker_instrument_not_mapped`` (not sent) for an instrument Angel's master lacks, else as
        ``families.angel.client`` maps Angel's answer."""
        body = place_body(
            request, angel_symbol(request.instrument_id, what=f"{request.exchange}:{request.tradingsymbol}")
        )
        data = self._call("place", body)
        orderid = self.client.parse("place", records.placed_order_id, data)
        _varieties.put(orderid, body["variety"])
        return PlaceResult(broker_order_id=orderid, status="OPEN")

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Restate the order with the change (modifyOrder), from its terms in Angel's order book.
        Raises BrokerOrderNotFound for an order Angel's book does not have."""
        order = self._book_order(broker_order_id)
        self._call("modify", modify_body(order, change))

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """Cancel the order (cancelOrder with its Angel variety). Raises BrokerOrderNotFound for an
        order Angel does not have."""
        angel_variety = VARIETY_AMO if variety == "amo" else _varieties.get(broker_order_id)
        if angel_variety is None:
            angel_variety = self._book_order(broker_order_id).variety
        self._call("cancel", {"variety": angel_variety, "orderid": broker_order_id})

    # --- reads -----------------------------------------------------------------------------------
    def _orders(self) -> list[records.AngelOrder]:
        orders = self.client.parse("orders", records.orders_from, self._call("orders"))
        for order in orders:
            if order.variety:
                _varieties.put(order.orderid, order.variety)
        return orders

    def _book_order(self, orderid: str) -> records.AngelOrder:
        for order in self._orders():
            if order.orderid == orderid:
                return order
        raise BrokerOrderNotFound(
            f"Angel One has no order {orderid[:40]!r} in today's order book: nothing was sent.",
            extra={"broker_order_id": orderid[:40]},
        )

    def _trades(self) -> list[records.AngelTrade]:
        return self.client.parse("trades", records.trades_from, self._call("trades"))

    def order_book(self) -> list[BrokerOrder]:
        """The day's orders with their fills (the trade book, read once)."""
        orders = self._orders()
        fills: dict[str, list[Fill]] = defaultdict(list)
        if any(order.filledshares for order in orders):
            for trade in self._trades():
                fills[trade.orderid].append(_fill(trade))
        return [_order(order, fills.get(order.orderid, [])) for order in orders]

    def order_by_tag(self, tag: str) -> BrokerOrder | None:
        """The order tagged ``tag`` with its trades, or None if Angel never received it."""
        for order in self._orders():
            if order.ordertag == tag:
                trades = self._trades() if order.filledshares else []
                return _order(order, [_fill(t) for t in trades if t.orderid == order.orderid])
        return None

    def trades(self) -> list[Fill]:
        return [_fill(trade) for trade in self._trades()]

    def positions(self) -> list[BrokerPosition]:
        mapping = instrument_map(FAMILY).by_token
        out = []
        for p in self.client.parse("positions", records.positions_from, self._call("positions")):
            instrument_id = mapping.get(token_key(p.exchange, p.symboltoken))
            if p.netqty and instrument_id is not None:
                out.append(
                    BrokerPosition(
                        instrument_id=instrument_id,
                        product=OUR_PRODUCTS.get(p.producttype, p.producttype),
                        net_quantity=p.netqty,
                        average_price=p.average_price,
                    )
                )
        return out

    def holdings(self) -> list[BrokerHolding]:
        mapping = instrument_map(FAMILY).by_token
        out = []
        for h in self.client.parse("holdings", records.holdings_from, self._call("holdings")):
            instrument_id = mapping.get(token_key(h.exchange, h.symboltoken))
            if h.quantity and instrument_id is not None:
                out.append(
                    BrokerHolding(instrument_id=instrument_id, quantity=h.quantity, average_price=h.averageprice)
                )
        return out

    def funds(self) -> BrokerFunds:
        """Available cash, margin used (utilised debits) and the net available margin (getRMS)."""
        funds = self.client.parse("funds", records.funds_from, self._call("funds"))
        return BrokerFunds(
            cash=funds.availablecash,
            margin_used=funds.utiliseddebits,
            available=funds.net,
            extra={"collateral": funds.collateral},
        )

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        """Angel's full quote (market/v1/quote, mode FULL) of each mapped instrument, 50 a request."""
        mapped = instrument_map(FAMILY).by_instrument
        keys: dict[str, int] = {}
        for pk in instrument_ids:
            symbol = mapped.get(pk)
            if symbol is not None:
                keys[symbol.token] = pk
        quotes: dict[int, Quote] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), QUOTE_BATCH):
            by_segment: dict[str, list[str]] = defaultdict(list)
            for key in ordered[start : start + QUOTE_BATCH]:
                segment, token = split_token(key)
                by_segment[segment].append(token)
            data = self._call("quote", {"mode": "FULL", "exchangeTokens": dict(by_segment)})

            def read(data: Any) -> dict[int, Quote]:
                rows = _quotes_from(data)
                return {keys[key]: _quote(keys[key], row) for key, row in rows.items() if key in keys}

            quotes.update(self.client.parse("quote", read, data))
        return quotes

    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        return product_margin_rate(
            product=product,
            instrument_type=instrument_type,
            side=side,
            mis_leverage=MIS_LEVERAGE,
            fo_margin_pct=FO_MARGIN_PCT,
        )

    # --- the session -----------------------------------------------------------------------------
    def _call(self, call: str, body: Mapping[str, Any] | None = None) -> Any:
        """One call; a token error from Angel (the session was revoked or has ended) also ends the
        account's session here, so pages show it lapsed and orders are refused before sending."""
        try:
            return self.client.call(call, body)
        except BrokerSessionExpired as error:
            session_end(account_id=self.account_id, reason=f"Angel One: {error.message}"[:200])
            raise


# --- request building -----------------------------------------------------------------------------
def place_body(request: BrokerOrderRequest, symbol: BrokerSymbol) -> dict[str, str]:
    """placeOrder's JSON object for ``request`` on Angel's ``symbol``: every value a string, as the
    SDK's README sends them. Raises BrokerRejected (not sent) for a term Angel has no word for."""
    try:
        segment, token = split_token(symbol.token)
        body = {
            "variety": variety_for(request.variety, request.order_type),
            "tradingsymbol": symbol.tradingsymbol,
            "symboltoken": token,
            "transactiontype": SIDES[request.side],
            "exchange": symbol.exchange or segment,
            "ordertype": ORDER_TYPES[request.order_type],
            "producttype": PRODUCTS[request.product],
            "duration": VALIDITIES[request.validity],
            "price": amount(request.price) if request.order_type in PRICED_TYPES and request.price is not None else "0",
            "squareoff": "0",
            "stoploss": "0",
            "quantity": str(int(request.quantity)),
            "ordertag": request.tag,
        }
    except (KeyError, ValueError) as exc:
        raise BrokerRejected(
            f"Angel One cannot take this order ({exc}): nothing was sent.",
            code="broker_cannot_order",
            extra={"instrument_id": request.instrument_id},
        ) from None
    if request.order_type in STOP_TYPES:
        if request.trigger_price is None:
            raise BrokerRejected(
                "A stop-loss order needs its trigger price: nothing was sent.", code="broker_cannot_order"
            )
        body["triggerprice"] = amount(request.trigger_price)
    if request.order_type in PRICED_TYPES and request.price is None:
        raise BrokerRejected("A limit order needs its price: nothing was sent.", code="broker_cannot_order")
    if not 0 < len(request.tag) <= AngelAdapter.capabilities.tag_length:
        raise BrokerRejected(
            "Angel One keeps an order tag of 1 to 20 characters: nothing was sent.", code="broker_cannot_order"
        )
    return body


def modify_body(order: records.AngelOrder, change: BrokerModifyRequest) -> dict[str, str]:
    """modifyOrder's JSON object: the order's terms as Angel holds them, with ``change`` applied."""
    ordertype = ORDER_TYPES[change.order_type] if change.order_type else order.ordertype
    ours = OUR_ORDER_TYPES.get(ordertype, "")
    price = change.price if change.price is not None else order.price
    body = {
        "variety": order.variety,
        "orderid": order.orderid,
        "ordertype": ordertype,
        "producttype": order.producttype,
        "duration": order.duration,
        "price": amount(price) if ours in PRICED_TYPES and price is not None else "0",
        "quantity": str(change.quantity if change.quantity is not None else order.quantity),
        "tradingsymbol": order.tradingsymbol,
        "symboltoken": order.symboltoken,
        "exchange": order.exchange,
    }
    if ours in STOP_TYPES:
        trigger = change.trigger_price if change.trigger_price is not None else order.triggerprice
        if trigger is not None:
            body["triggerprice"] = amount(trigger)
    return body


def angel_symbol(instrument_id: int, *, what: str) -> BrokerSymbol:
    """How Angel names our instrument (its exchange, trading symbol and ``EXCH:token`` key), from the
    Angel mapping. Raises BrokerRejected ``broker_instrument_not_mapped`` (nothing sent) when Angel's
    scrip master does not have it."""
    return broker_symbol_required(
        broker=FAMILY, instrument_id=instrument_id, what=what, master="Angel One's scrip master (no Angel mapping)"
    )


# --- answers into the contract's values -----------------------------------------------------------
def _session_tokens(data: Any) -> dict[str, str]:
    if not isinstance(data, Mapping):
        raise TypeError("loginByPassword's answer is an object")
    tokens = {"jwt_token": data["jwtToken"], "refresh_token": data["refreshToken"], "feed_token": data["feedToken"]}
    if not all(isinstance(value, str) and value for value in tokens.values()):
        raise ValueError("loginByPassword answered without its tokens")
    return tokens


def _fill(trade: records.AngelTrade) -> Fill:
    return Fill(
        trade_id=trade.fillid,
        quantity=trade.fillsize,
        price=trade.fillprice,
        ts=trade.filled_at or timezone.now(),
        broker_order_id=trade.orderid,
        exchange=trade.exchange,
    )


def _order(order: records.AngelOrder, fills: list[Fill]) -> BrokerOrder:
    ours = OUR_ORDER_TYPES.get(order.ordertype)
    return BrokerOrder(
        tag=order.ordertag,
        broker_order_id=order.orderid,
        status=status_of(order.status, current="OPEN"),
        quantity=order.quantity,
        filled_quantity=order.filledshares,
        average_price=order.averageprice,
        fills=tuple(fills),
        message=order.text[:500],
        order_type=ours,
        price=order.price if ours in PRICED_TYPES else None,
        trigger_price=order.triggerprice if ours in STOP_TYPES else None,
    )


def _quotes_from(data: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(data, Mapping):
        raise TypeError("the quote answer is an object")
    fetched = data.get("fetched") or []
    if not isinstance(fetched, list):
        raise TypeError("fetched is a list")
    out = {}
    for row in fetched:
        if not isinstance(row, Mapping):
            raise TypeError("a quote is an object")
        out[token_key(records.text(row, "exchange"), records.text(row, "symbolToken"))] = row
    return out


def _quote(instrument_id: int, row: Mapping[str, Any]) -> Quote:
    ltp = records.decimal(row, "ltp")
    if ltp is None:
        raise ValueError("a quote without its last price")
    depth = row.get("depth") if isinstance(row.get("depth"), Mapping) else {}
    assert isinstance(depth, Mapping)

    def levels(side: str) -> tuple[DepthLevel, ...]:
        out = []
        for level in depth.get(side) or []:
            price = records.decimal(level, "price")
            if price:
                out.append(DepthLevel(price, records.integer(level, "quantity"), records.integer(level, "orders") or 1))
        return tuple(out)

    bids, asks = levels("buy"), levels("sell")
    return Quote(
        instrument_id=instrument_id,
        ltp=ltp,
        ts=records.stamp(row.get("exchFeedTime")) or timezone.now(),
        bid=bids[0].price if bids else None,
        ask=asks[0].price if asks else None,
        bid_qty=bids[0].quantity if bids else 0,
        ask_qty=asks[0].quantity if asks else 0,
        volume=records.integer(row, "tradeVolume"),
        oi=records.integer(row, "opnInterest"),
        open=records.decimal(row, "open"),
        high=records.decimal(row, "high"),
        low=records.decimal(row, "low"),
        close=records.decimal(row, "close"),
        bids=bids,
        asks=asks,
    )
