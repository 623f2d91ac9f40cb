"""DhanHQ v2 as a broker family: the broker contract over ``families.dhan.client.DhanClient``.

An adapter is one account's: its Dhan client id (the account's ``client_code``, or a stored
``client_id``), the day's access token from its live session, its rate limits counted per account.
Our order's tag travels as Dhan's ``correlationId``, which the order book, the order-update stream and
postbacks all carry. Dhan's order updates carry an order's traded quantity but no trade ids, so the
updates built from them carry ``filled_quantity`` and the order system reads the trades through
``order_by_tag`` (reconciliation).

Sign-in (``login_direct``, kind "api_key"): with a PIN and a TOTP secret stored, a fresh access
token from Dhan's token host (``POST auth.dhan.co/app/generateAccessToken``); else the access token
the account's owner generated on web.dhan.co and stored, checked with ``GET /v2/profile``. Dhan's
tokens live 24 hours from their generation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from django.utils import timezone

from brokers import catalogue
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
from brokers.families.wire import malformed
from brokers.instrument_map import broker_symbol_for, broker_symbol_required, instrument_map
from brokers.margin import product_margin_rate
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import session_end
from families.dhan import mapping, records
from families.dhan.client import MAX_MODIFICATIONS, DhanAuth, DhanClient
from families.dhan.mapping import FAMILY
from families.dhan.master import download_master, parse_master
from families.dhan.records import DhanOrder, DhanTrade
from families.dhan.stream import MarketDialect, OrderDialect
from marketdata.quotes import DepthLevel, Quote

T = TypeVar("T")

TOKEN_LIFETIME = timedelta(hours=24)
# The ledger's margin estimate for Dhan accounts (Dhan's RMS has the final word).
MIS_LEVERAGE, FO_MARGIN_PCT = 5, 15


class DhanAdapter(BrokerAdapter):
    """One account at a broker of the Dhan family (DhanHQ v2)."""

    code: ClassVar[str] = FAMILY
    capabilities: ClassVar[Capabilities] = Capabilities(
        exchanges=frozenset(mapping.SEGMENTS),
        order_types=frozenset(mapping.ORDER_TYPES),
        products=frozenset(mapping.PRODUCTS),
        validities=frozenset(mapping.VALIDITIES),
        varieties=frozenset({"regular", "amo"}),
        max_modifications=MAX_MODIFICATIONS,
        # Dhan documents no length for correlationId; our tags (20 letters and digits) are what is sent.
        tag_length=20,
    )
    login: ClassVar[Login | None] = Login(kind="api_key", credentials=("access_token", "pin", "totp_secret"))

    def __init__(self, *, account_id: int, client: DhanClient) -> None:
        super().__init__(account_id=account_id)
        self.client = client

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> DhanAdapter:
        session = session or {}
        client = DhanClient(
            broker=account.broker,
            client_id=session.get("client_id") or account.client_code,
            access_token=session.get("access_token", ""),
            root=catalogue.endpoint(account.broker, "api"),
            limit_key=f"account:{account.pk}",
        )
        return cls(account_id=account.pk, client=client)

    # --- the daily sign-in ---------------------------------------------------------------------------
    @classmethod
    def login_direct(cls, account: Any) -> SignIn:
        """A new session for ``account`` (see the module docstring). Raises ValueError when the
        credentials needed are missing or malformed, BrokerError when Dhan refuses them."""
        credentials = broker_credentials_get(account=account)
        client_id = (credentials.get("client_id") or account.client_code or "").strip()
        if not client_id.isascii() or not client_id.isalnum() or len(client_id) > 20:
            raise ValueError("The account's Dhan client id is missing or malformed.")
        pin, secret = credentials.get("pin", ""), credentials.get("totp_secret", "")
        now = timezone.now()
        if pin or secret:
            if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 6) or not secret:
                raise ValueError("Store both the account's Dhan PIN (digits) and its TOTP secret.")
            auth = DhanAuth(root=catalogue.endpoint(account.broker, "auth"), limit_key=f"login:{account.pk}")
            answer = auth.generate_token(client_id=client_id, pin=pin, totp=totp_now(secret))
            token, expires, user = _parse(auth_answer, answer)
            if user and user != client_id:
                raise BrokerRejected(
                    "Dhan signed in another client than the account's: the session was not kept.",
                    code="broker_wrong_user",
                    extra={"client_id": user[:20]},
                )
        else:
            token = credentials.get("access_token", "").strip()
            if not token or len(token) > 4096 or not token.isascii() or any(c.isspace() for c in token):
                raise ValueError("Store the account's Dhan access token (or its PIN and TOTP secret).")
            client = DhanClient(
                broker=account.broker,
                client_id=client_id,
                access_token=token,
                root=catalogue.endpoint(account.broker, "api"),
                limit_key=f"account:{account.pk}",
            )
            expires, user = _parse(profile_answer, client.profile())
            if user and user != client_id:
                raise BrokerRejected(
                    "The stored Dhan access token belongs to another client: the session was not kept.",
                    code="broker_wrong_user",
                    extra={"client_id": user[:20]},
                )
        expires_at = expires if expires is not None and expires > now else now + TOKEN_LIFETIME
        return SignIn(
            secrets={"access_token": token},
            expires_at=min(expires_at, now + TOKEN_LIFETIME),
            broker_user=client_id,
        )

    # --- writes ------------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Send the order tagged with its broker tag (``correlationId``); return Dhan's order id with
        OPEN (Dhan's answer is TRANSIT; its status follows by the order-update stream). Raises
        BrokerRejected ``broker_instrument_not_mapped`` (not sent) for an instrument Dhan's master lacks."""
        body = place_body(request, self._security(request.instrument_id, request))
        data = self._call(self.client.place_order, body)
        order_id = self.client.parse("place", lambda d: records.text(d, "orderId"), data)
        return PlaceResult(broker_order_id=order_id, status="OPEN")

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Change a resting order (``PUT /orders/{id}``). Dhan's modification names every term, so the
        order's current ones are read from the order book for those ``change`` leaves as they are."""
        current = self._order(broker_order_id)
        data = self._call(self.client.modify_order, broker_order_id, modify_body(broker_order_id, current, change))
        self.client.parse("modify", lambda d: records.text(d, "orderId"), data)

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """Cancel a resting order (``DELETE /orders/{id}``); the cancellation follows as an update."""
        data = self._call(self.client.cancel_order, broker_order_id)
        self.client.parse("cancel", lambda d: records.text(d, "orderId"), data)

    # --- reads -------------------------------------------------------------------------------------
    def order_book(self) -> list[BrokerOrder]:
        """The day's orders with their fills (the trade book, read once)."""
        orders = self._orders()
        fills: dict[str, list[Fill]] = defaultdict(list)
        for trade in self._trades(self.client.trades):
            fills[trade.order_id].append(_fill(trade))
        return [_order(order, fills.get(order.order_id, [])) for order in orders]

    def order_by_tag(self, tag: str) -> BrokerOrder | None:
        """The order whose correlationId is ``tag``, with its trades (read for that order only), or None."""
        for order in self._orders():
            if order.tag == tag:
                trades = self._trades(self.client.order_trades, order.order_id)
                return _order(order, [_fill(t) for t in trades])
        return None

    def trades(self) -> list[Fill]:
        return [_fill(trade) for trade in self._trades(self.client.trades)]

    def positions(self) -> list[BrokerPosition]:
        data = self._call(self.client.positions)
        positions = []
        for row in self.client.parse("positions", records.rows, data):
            position = self.client.parse("positions", _position, row)
            if position is not None:
                positions.append(position)
        return positions

    def holdings(self) -> list[BrokerHolding]:
        data = self._call(self.client.holdings)
        holdings = []
        for row in self.client.parse("holdings", records.rows, data):
            holding = self.client.parse("holdings", _holding, row)
            if holding is not None:
                holdings.append(holding)
        return holdings

    def funds(self) -> BrokerFunds:
        """Cash (the start-of-day limit), margin used and available balance (``GET /fundlimit``)."""
        return self.client.parse("funds", _funds, self._call(self.client.funds))

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        """Dhan's quotes (``POST /marketfeed/quote``) of the instruments its master maps."""
        wanted: dict[tuple[str, str], int] = {}
        for pk in instrument_ids:
            symbol = broker_symbol_for(broker=FAMILY, instrument_id=pk)
            if symbol is None:
                continue
            try:
                wanted[mapping.segment_for(symbol.exchange, symbol.token)] = pk
            except BrokerRejected:
                continue
        if not wanted:
            return {}
        securities: dict[str, list[int]] = defaultdict(list)
        for segment, security_id in sorted(wanted):
            securities[segment].append(int(security_id))
        data = self._call(self.client.quote, dict(securities))
        return self.client.parse("quote", lambda d: _quotes(d, wanted, timezone.now()), data)

    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        return product_margin_rate(
            product=product,
            instrument_type=instrument_type,
            side=side,
            mis_leverage=MIS_LEVERAGE,
            fo_margin_pct=FO_MARGIN_PCT,
        )

    # --- streams and master ----------------------------------------------------------------------------
    @classmethod
    def market_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        return MarketDialect(
            url_base=catalogue.endpoint(account.broker, "ws"),
            client_id=session.get("client_id") or account.client_code,
            access_token=session.get("access_token", ""),
        )

    @classmethod
    def order_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        return OrderDialect(
            url_base=catalogue.endpoint(account.broker, "order_ws"),
            client_id=session.get("client_id") or account.client_code,
            access_token=session.get("access_token", ""),
        )

    @classmethod
    def update_from_stream(cls, account_id: int, message: Mapping[str, Any]) -> BrokerUpdate | None:
        """One message of Dhan's order-update stream as a BrokerUpdate (None for another type of
        message or an order without our tag). Raises ValueError for a malformed order alert."""
        try:
            data = records.order_update_data(message)
            if data is None:
                return None
            tag = records.text(data, "correlationId", required=False)
            if not tag:
                return None
            order_type = records.text(data, "orderType", required=False)
            return BrokerUpdate(
                account_id=account_id,
                tag=tag,
                broker_order_id=records.text(data, "orderNo"),
                status=mapping.status_of(records.text(data, "status"), current="OPEN", order_type=order_type),
                ts=records.moment(data.get("lastUpdatedTime")) or timezone.now(),
                message=records.text(data, "reasonDescription", required=False)[:500],
                filled_quantity=records.whole(data, "tradedQty", default=0),
            )
        except (KeyError, TypeError, ArithmeticError, AttributeError) as exc:
            raise ValueError(f"not a Dhan order update: {type(exc).__name__}") from exc

    @classmethod
    def master_rows(cls, broker: str) -> Iterable[MasterRow | tuple[int, str]]:
        return parse_master(download_master(broker))

    # --- internals ---------------------------------------------------------------------------------
    def _call(self, function: Callable[..., T], *args: Any) -> T:
        """A call to Dhan; a refused token (DH-901) also ends the account's session here, so pages show
        it lapsed and orders are refused before sending until the trader signs in again."""
        try:
            return function(*args)
        except BrokerSessionExpired as error:
            session_end(account_id=self.account_id, reason=f"Dhan: {error.message}"[:200])
            raise

    def _security(self, instrument_id: int, request: BrokerOrderRequest) -> tuple[str, str]:
        symbol = broker_symbol_required(
            broker=FAMILY,
            instrument_id=instrument_id,
            what=f"{request.exchange}:{request.tradingsymbol}",
            master="Dhan's security list (no Dhan mapping)",
        )
        return mapping.segment_for(symbol.exchange, symbol.token)

    def _orders(self) -> list[DhanOrder]:
        data = self._call(self.client.orders)
        rows = self.client.parse("orders", records.rows, data)
        return [self.client.parse("orders", records.order_of, row) for row in rows]

    def _trades(self, read: Callable[..., Any], *args: Any) -> list[DhanTrade]:
        rows = self.client.parse("trades", records.rows, self._call(read, *args))
        return [self.client.parse("trades", records.trade_of, row) for row in rows]

    def _order(self, order_id: str) -> DhanOrder:
        for order in self._orders():
            if order.order_id == order_id:
                return order
        raise BrokerOrderNotFound(
            f"Dhan has no order {order_id[:40]!r} in today's order book: nothing was sent.",
            extra={"broker_order_id": order_id[:40]},
        )


# --- request bodies ---------------------------------------------------------------------------------
def place_body(request: BrokerOrderRequest, security: tuple[str, str]) -> dict[str, Any]:
    """The ``POST /orders`` body for ``request`` (without ``dhanClientId``, which the client adds).
    Raises BrokerRejected ``broker_unsupported`` (nothing sent) for a value Dhan has no name for."""
    segment, security_id = security
    order_type = _pick(mapping.ORDER_TYPES, request.order_type, "order type")
    product = _pick(mapping.PRODUCTS, request.product, "product")
    validity = _pick(mapping.VALIDITIES, request.validity, "validity")
    side = _pick(mapping.SIDES, request.side, "side")
    if request.variety not in DhanAdapter.capabilities.varieties:
        raise mapping.refuse_unsupported("variety", request.variety)
    if not isinstance(request.quantity, int) or isinstance(request.quantity, bool) or request.quantity <= 0:
        raise _invalid("The order's quantity must be a positive whole number: nothing was sent.")
    priced = request.order_type in {"LIMIT", "SL"}
    stop = request.order_type in {"SL", "SL-M"}
    price = _price(request.price, "price") if priced else Decimal(0)
    trigger = _price(request.trigger_price, "trigger price") if stop else Decimal(0)
    body: dict[str, Any] = {
        "correlationId": request.tag,
        "transactionType": side,
        "exchangeSegment": segment,
        "productType": product,
        "orderType": order_type,
        "validity": validity,
        "securityId": security_id,
        "quantity": request.quantity,
        "disclosedQuantity": 0,
        "price": price,
        "triggerPrice": trigger,
        "afterMarketOrder": request.variety == "amo",
    }
    if request.variety == "amo":
        body["amoTime"] = "OPEN"
    return body


def modify_body(order_id: str, current: DhanOrder, change: BrokerModifyRequest) -> dict[str, Any]:
    """The ``PUT /orders/{id}`` body: every term Dhan asks for, ``change``'s where it gives them."""
    ours = change.order_type or mapping.ORDER_TYPES_BACK.get(current.order_type)
    if ours is None:
        raise mapping.refuse_unsupported("order type", current.order_type)
    order_type = _pick(mapping.ORDER_TYPES, ours, "order type")
    priced, stop = ours in {"LIMIT", "SL"}, ours in {"SL", "SL-M"}
    price = _price(change.price if change.price is not None else current.price, "price") if priced else Decimal(0)
    trigger = (
        _price(change.trigger_price if change.trigger_price is not None else current.trigger_price, "trigger price")
        if stop
        else Decimal(0)
    )
    quantity = change.quantity if change.quantity is not None else current.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise _invalid("The new quantity must be a positive whole number: nothing was sent.")
    return {
        "orderId": order_id,
        "orderType": order_type,
        "legName": "ENTRY_LEG",
        "quantity": quantity,
        "price": price,
        "disclosedQuantity": 0,
        "triggerPrice": trigger,
        "validity": "DAY",
    }


def _invalid(message: str) -> BrokerRejected:
    return BrokerRejected(message, code="broker_invalid_order")


def _pick(table: Mapping[str, str], value: str, what: str) -> str:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise mapping.refuse_unsupported(what, str(value)) from None


def _price(value: Decimal | None, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise _invalid(f"The order needs a positive {what}: nothing was sent.")
    return value


# --- answers into the contract's values ---------------------------------------------------------------
def auth_answer(data: Any) -> tuple[str, datetime | None, str]:
    token = records.text(data, "accessToken")
    if not token or len(token) > 4096:
        raise ValueError("no access token")
    return token, records.moment(data.get("expiryTime")), records.text(data, "dhanClientId", required=False)


def profile_answer(data: Any) -> tuple[datetime | None, str]:
    return records.moment(data.get("tokenValidity")), records.text(data, "dhanClientId", required=False)


def _parse(read: Callable[[Any], T], data: Any) -> T:
    try:
        return read(data)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise malformed("Dhan", "the sign-in") from exc


def _find(segment: str, security_id: str) -> int | None:
    by_token = instrument_map(FAMILY).by_token
    found = by_token.get(mapping.token_of(segment, security_id))
    return found if found is not None else by_token.get(security_id)


def _fill(trade: DhanTrade) -> Fill:
    return Fill(
        trade_id=trade.trade_id,
        quantity=trade.quantity,
        price=trade.price,
        ts=trade.ts or timezone.now(),
        broker_order_id=trade.order_id,
        exchange=mapping.EXCHANGES.get(trade.segment, trade.segment),
    )


def _order(order: DhanOrder, fills: list[Fill]) -> BrokerOrder:
    ours = mapping.ORDER_TYPES_BACK.get(order.order_type)
    return BrokerOrder(
        tag=order.tag,
        broker_order_id=order.order_id,
        status=mapping.status_of(order.status, current="OPEN", order_type=order.order_type),
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        fills=tuple(fills),
        message=order.message,
        order_type=ours,
        price=order.price if ours in {"LIMIT", "SL"} else None,
        trigger_price=order.trigger_price if ours in {"SL", "SL-M"} else None,
    )


def _position(row: Mapping[str, Any]) -> BrokerPosition | None:
    net = records.whole(row, "netQty")
    instrument_id = _find(records.text(row, "exchangeSegment"), records.text(row, "securityId"))
    product = mapping.PRODUCTS_BACK.get(records.text(row, "productType"))
    if not net or instrument_id is None or product is None:
        return None
    average = records.number(row, "buyAvg" if net > 0 else "sellAvg", default=Decimal(0))
    return BrokerPosition(
        instrument_id=instrument_id, product=product, net_quantity=net, average_price=average if average > 0 else None
    )


def _holding(row: Mapping[str, Any]) -> BrokerHolding | None:
    quantity = records.whole(row, "totalQty")
    security_id, exchange = records.text(row, "securityId"), records.text(row, "exchange", required=False)
    segments = [mapping.SEGMENTS[exchange]] if exchange in mapping.SEGMENTS else ["NSE_EQ", "BSE_EQ"]
    instrument_id = next((pk for s in segments if (pk := _find(s, security_id)) is not None), None)
    if not quantity or instrument_id is None:
        return None
    return BrokerHolding(
        instrument_id=instrument_id, quantity=quantity, average_price=records.number(row, "avgCostPrice")
    )


def _funds(data: Any) -> BrokerFunds:
    # Dhan spells the key "availabelBalance" (sic); a corrected spelling is read too.
    available = records.number(data, "availabelBalance" if "availabelBalance" in data else "availableBalance")
    return BrokerFunds(
        cash=records.number(data, "sodLimit"),
        margin_used=records.number(data, "utilizedAmount"),
        available=available,
        extra={
            "collateral": records.number(data, "collateralAmount", default=Decimal(0)),
            "withdrawable": records.number(data, "withdrawableBalance", default=Decimal(0)),
        },
    )


def _quotes(data: Any, wanted: Mapping[tuple[str, str], int], now: datetime) -> dict[int, Quote]:
    segments = data["data"]
    if not isinstance(segments, Mapping):
        raise TypeError("data is not an object")
    quotes: dict[int, Quote] = {}
    for segment, securities in segments.items():
        if not isinstance(securities, Mapping):
            raise TypeError("a segment's quotes are not an object")
        for security_id, q in securities.items():
            pk = wanted.get((segment, str(security_id)))
            if pk is None or not isinstance(q, Mapping):
                continue
            ltp = records.number(q, "last_price")
            if ltp <= 0:
                continue
            depth = q.get("depth") or {}
            quotes[pk] = Quote(
                instrument_id=pk,
                ltp=ltp,
                ts=records.moment(q.get("last_trade_time")) or now,
                volume=records.whole(q, "volume", default=0),
                bids=_levels(depth.get("buy") or []),
                asks=_levels(depth.get("sell") or []),
            )
    return quotes


def _levels(levels: Any) -> tuple[DepthLevel, ...]:
    return tuple(
        DepthLevel(records.number(level, "price"), records.whole(level, "quantity"))
        for level in records.rows(levels)
        if records.number(level, "price") > 0
    )
