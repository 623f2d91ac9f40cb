"""Symphony Fintech's XTS as a broker family: the broker contract over ``families.xts.client``.

One adapter is one account's: the Interactive and Market Data sessions from its live broker session
(both signed in by ``login_direct`` with the account's two app key pairs), its broker's hosts and rate
limits from the registry (``brokers.catalogue``), its instruments named through the family's mapping
(``brokers.instrument_map``, broker "xts": token "<segment number>_<exchange instrument id>"). XTS
names an order by ``orderUniqueIdentifier``, which carries our order's tag. Modifying or cancelling
reads the order first: XTS's modify restates every term (product, type, quantity, prices, validity)
and its cancel names the order's tag. Order updates come from the interactive socket
(``order_stream``), whose ``order`` and ``trade`` events ``update_from_stream`` reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar

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
    BrokerUnavailable,
    BrokerUpdate,
    Capabilities,
    Fill,
    Login,
    PlaceResult,
    SignIn,
)
from brokers.families.master import MasterRow
from brokers.families.stream import MalformedFrame
from brokers.families.wire import PARSE_ERRORS, decode_json
from brokers.instrument_map import (
    BrokerSymbol,
    broker_symbol_required,
    instrument_id_for_token,
    instrument_map,
)
from brokers.margin import product_margin_rate
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import next_cutoff, session_end, session_secrets
from families.xts import records
from families.xts.client import XtsSession, endpoints, sign_in
from families.xts.mapping import (
    EXCHANGES,
    ORDER_TYPES,
    PRODUCTS,
    SEGMENT_NUMBERS,
    SEGMENTS,
    SIDES,
    STATUSES,
    VALIDITIES,
    order_type_of,
    parse_token,
    status_key,
    status_of,
    token_of,
)
from families.xts.master import SEGMENTS as MASTER_SEGMENTS
from families.xts.master import parse_master
from families.xts.stream import TOUCHLINE, MarketDialect, OrderDialect, tick_from
from marketdata.quotes import Quote

BROKER = "xts"  # the family's code: its mapping in brokers.instrument_map
CUTOFF_IST = "06:00"  # when the day's XTS session is taken as ended (docs/brokers.md: unverified)
CREDENTIALS = ("app_key", "secret_key", "md_app_key", "md_secret_key")
# The ledger's margin estimate for XTS accounts (the broker's RMS has the final word).
MIS_LEVERAGE, FO_MARGIN_PCT = 5, 15


class XtsAdapter(BrokerAdapter):
    """One account at an XTS broker (IIFL's Blaze, ...)."""

    code: ClassVar[str] = BROKER
    capabilities: ClassVar[Capabilities] = Capabilities(
        exchanges=frozenset(SEGMENTS),
        order_types=frozenset(ORDER_TYPES),
        products=PRODUCTS,
        validities=VALIDITIES,
        varieties=frozenset({"regular"}),
        tag_length=20,
    )
    login: ClassVar[Login | None] = Login(kind="api_key", credentials=CREDENTIALS, expires_at_ist=CUTOFF_IST)

    def __init__(
        self, *, account_id: int, interactive: XtsSession, market: XtsSession, client_id: str | None = None
    ) -> None:
        super().__init__(account_id=account_id)
        self.interactive, self.market = interactive, market
        self.calls = endpoints(interactive.broker)
        self.client_id = client_id  # a dealer login names the client on every Interactive call

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> XtsAdapter:
        session = session or {}
        root = catalogue.endpoint(account.broker, "api")
        key = f"account:{account.pk}"
        dealer = session.get("investor", "1") != "1"
        return cls(
            account_id=account.pk,
            interactive=XtsSession(broker=account.broker, root=root, token=session.get("token", ""), limit_key=key),
            market=XtsSession(broker=account.broker, root=root, token=session.get("md_token", ""), limit_key=key),
            client_id=account.client_code if dealer else None,
        )

    # --- the daily sign-in ----------------------------------------------------------------------
    @classmethod
    def login_direct(cls, account: Any) -> SignIn:
        """Sign in to Interactive and to Market Data with the account's two app key pairs; the session
        holds both tokens and the Market Data user id (and the Interactive one where it is not the
        account's client code, as for a dealer). Raises ValueError when a key is missing, BrokerError
        when XTS refuses."""
        stored = broker_credentials_get(account=account)
        missing = [name for name in CREDENTIALS if not stored.get(name)]
        if missing:
            raise ValueError(f"Store the account's XTS {', '.join(missing)} first.")
        root, calls = catalogue.endpoint(account.broker, "api"), endpoints(account.broker)
        client = XtsSession(broker=account.broker, root=root, limit_key=f"login:{account.pk}")
        interactive = sign_in(client, calls.login, app_key=stored["app_key"], secret_key=stored["secret_key"])
        market = sign_in(client, calls.md_login, app_key=stored["md_app_key"], secret_key=stored["md_secret_key"])
        investor = interactive.get("isInvestorClient", True)
        secrets = {
            "token": str(interactive["token"]),
            "investor": "0" if investor is False else "1",
            "md_token": str(market["token"]),
            "md_user_id": str(market["userID"]),
        }
        # A dealer's user id; an investor's is the account's client code, kept there already.
        if str(interactive["userID"]) != account.client_code:
            secrets["user_id"] = str(interactive["userID"])
        return SignIn(
            secrets=secrets,
            expires_at=next_cutoff(timezone.now(), CUTOFF_IST),
            broker_user=str(interactive["userID"])[:64],
        )

    # --- writes -----------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Send the order with its tag as ``orderUniqueIdentifier``; return XTS's ``AppOrderID`` with
        OPEN (its status follows on the interactive socket). Raises BrokerRejected (not sent) for an
        unmapped instrument or terms XTS cannot take, else as ``families.xts.errors`` maps XTS's answer."""
        segment, instrument_id = _instrument(request.instrument_id, f"{request.exchange}:{request.tradingsymbol}")
        body = {
            "exchangeSegment": segment,
            "exchangeInstrumentID": instrument_id,
            "productType": _term(request.product, PRODUCTS, "product"),
            "orderType": ORDER_TYPES.get(request.order_type) or _unsupported("order type", request.order_type),
            "orderSide": _term(request.side, SIDES, "side"),
            "timeInForce": _term(request.validity, VALIDITIES, "validity"),
            "disclosedQuantity": 0,
            "orderQuantity": _quantity(request.quantity),
            "limitPrice": _limit(request.order_type, request.price),
            "stopPrice": _stop(request.order_type, request.trigger_price),
            "apiOrderSource": "",
            "orderUniqueIdentifier": request.tag,
        }
        if request.variety != "regular":
            _unsupported("variety", request.variety)
        result = self._call(self.interactive, self.calls.place, body=self._client(body))
        app_order_id = self.interactive.wire.parse("the placed order", lambda r: records.text(r["AppOrderID"]), result)
        if not app_order_id.isdigit():
            raise BrokerUnavailable("XTS accepted the order without a numeric AppOrderID; the outcome is unknown")
        return PlaceResult(broker_order_id=app_order_id, status="OPEN")

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Restate the order's terms with ``change`` applied (``PUT /interactive/orders``). Raises
        BrokerOrderNotFound for an order XTS does not have."""
        current = self._order(broker_order_id)
        order_type = change.order_type or order_type_of(current.order_type) or "LIMIT"
        price = change.price if change.price is not None else current.price
        trigger = change.trigger_price if change.trigger_price is not None else current.trigger_price
        body = {
            "appOrderID": int(broker_order_id),
            "modifiedProductType": current.product,
            "modifiedOrderType": ORDER_TYPES.get(order_type) or _unsupported("order type", order_type),
            "modifiedOrderQuantity": _quantity(change.quantity if change.quantity is not None else current.quantity),
            "modifiedDisclosedQuantity": 0,
            "modifiedLimitPrice": _limit(order_type, price),
            "modifiedStopPrice": _stop(order_type, trigger),
            "modifiedTimeInForce": current.validity or "DAY",
            "orderUniqueIdentifier": current.tag,
        }
        self._call(self.interactive, self.calls.modify, body=self._client(body), order_specific=True)

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """Cancel the order (``DELETE /interactive/orders?appOrderID=&orderUniqueIdentifier=``). Raises
        BrokerOrderNotFound for an order XTS does not have."""
        current = self._order(broker_order_id)
        params = self._client({"appOrderID": broker_order_id, "orderUniqueIdentifier": current.tag})
        self._call(self.interactive, self.calls.cancel, params=params, order_specific=True)

    # --- reads ------------------------------------------------------------------------------------
    def order_book(self) -> list[BrokerOrder]:
        """Return the day's orders with their fills (the trade book, read once)."""
        fills: dict[str, list[Fill]] = defaultdict(list)
        for fill in self.trades():
            fills[fill.broker_order_id].append(fill)
        return [_order(o, fills.get(o.app_order_id, [])) for o in self._orders()]

    def order_by_tag(self, tag: str) -> BrokerOrder | None:
        """Return the order tagged ``tag`` with its fills, or None when XTS never received it."""
        for order in self._orders():
            if order.tag == tag:
                return _order(order, [f for f in self.trades() if f.broker_order_id == order.app_order_id])
        return None

    def trades(self) -> list[Fill]:
        result = self._call(self.interactive, self.calls.trades, params=self._client({}))
        rows = self.interactive.wire.parse(
            "the trade book", lambda r: [records.trade_from(t) for t in (r or [])], result
        )
        now = timezone.now()
        return [
            Fill(
                trade_id=t.execution_id,
                quantity=t.quantity,
                price=t.price,
                ts=t.ts or now,
                broker_order_id=t.app_order_id,
                exchange=EXCHANGES.get(t.segment, t.segment),
            )
            for t in rows
        ]

    def positions(self) -> list[BrokerPosition]:
        params = self._client({"dayOrNet": "NetWise"})
        result = self._call(self.interactive, self.calls.positions, params=params)
        rows = self.interactive.wire.parse("the positions", records.positions_from, result)
        positions = []
        for p in rows:
            instrument_id = _ours(p.segment, p.instrument_id)
            if p.quantity and instrument_id is not None:
                positions.append(
                    BrokerPosition(
                        instrument_id=instrument_id,
                        product=p.product,
                        net_quantity=p.quantity,
                        average_price=p.average_price,
                    )
                )
        return positions

    def holdings(self) -> list[BrokerHolding]:
        result = self._call(self.interactive, self.calls.holdings, params=self._client({}))
        rows = self.interactive.wire.parse("the holdings", records.holdings_from, result)
        holdings = []
        for h in rows:
            instrument_id = _ours("NSECM", h.nse_instrument_id) or _ours("BSECM", h.bse_instrument_id)
            if h.quantity and instrument_id is not None:
                holdings.append(
                    BrokerHolding(instrument_id=instrument_id, quantity=h.quantity, average_price=h.average_price)
                )
        return holdings

    def funds(self) -> BrokerFunds:
        """Return the cash available, margin utilised and net margin available (XTS's RMS sub-limits)."""
        result = self._call(self.interactive, self.calls.balance, params=self._client({}))
        balance = self.interactive.wire.parse("the balance", records.balance_from, result)
        return BrokerFunds(
            cash=balance.cash,
            margin_used=balance.margin_used,
            available=balance.available,
            extra={"collateral": balance.collateral},
        )

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        """The touchline (1501) of each of our instruments XTS's mapping lists, by its market-data session."""
        mapped = instrument_map(BROKER).by_instrument
        wanted: dict[str, int] = {}
        instruments = []
        for pk in instrument_ids:
            symbol = mapped.get(pk)
            if symbol is None:
                continue
            try:
                segment, instrument_id = parse_token(symbol.token)
            except ValueError:
                continue
            wanted[symbol.token] = pk
            instruments.append({"exchangeSegment": SEGMENT_NUMBERS[segment], "exchangeInstrumentID": instrument_id})
        if not instruments:
            return {}
        body = {"instruments": instruments, "xtsMessageCode": TOUCHLINE, "publishFormat": "JSON"}
        result = self._call(self.market, self.calls.quotes, body=body)
        ticks = self.market.wire.parse("the quotes", _quote_ticks, result)
        now = timezone.now()
        quotes: dict[int, Quote] = {}
        for tick in ticks:
            found = wanted.get(tick.token)
            if found is None or tick.ltp is None:
                continue
            quotes[found] = Quote(
                instrument_id=found,
                ltp=tick.ltp,
                ts=tick.ts or now,
                bid=tick.bid,
                ask=tick.ask,
                bid_qty=tick.bid_qty,
                ask_qty=tick.ask_qty,
                volume=tick.volume,
                open=tick.open,
                high=tick.high,
                low=tick.low,
                close=tick.close,
                bids=tick.bids,
                asks=tick.asks,
            )
        return quotes

    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        return product_margin_rate(
            product=product,
            instrument_type=instrument_type,
            side=side,
            mis_leverage=MIS_LEVERAGE,
            fo_margin_pct=FO_MARGIN_PCT,
        )

    # --- streams and the symbol master -------------------------------------------------------------
    @classmethod
    def market_stream(cls, account: Any, session: Mapping[str, str]) -> MarketDialect:
        """The market-data socket with the session's Market Data token; subscriptions go over REST."""
        market = XtsSession(
            broker=account.broker,
            root=catalogue.endpoint(account.broker, "api"),
            token=session.get("md_token", ""),
            limit_key=f"account:{account.pk}",
        )
        subscribe = endpoints(account.broker).subscribe

        def subscriber(instruments: list[dict[str, int]]) -> None:
            market.call(subscribe, body={"instruments": instruments, "xtsMessageCode": TOUCHLINE})

        return MarketDialect(
            root=catalogue.endpoint(account.broker, "ws"),
            token=session.get("md_token", ""),
            user_id=session.get("md_user_id", ""),
            subscriber=subscriber,
        )

    @classmethod
    def order_stream(cls, account: Any, session: Mapping[str, str]) -> OrderDialect:
        """The interactive socket with the session's Interactive token (its ``order`` and ``trade`` events)."""
        try:
            root = catalogue.endpoint(account.broker, "order_ws")
        except catalogue.UnknownBrokerEntry:
            root = catalogue.endpoint(account.broker, "ws")  # one host serves both sockets
        user_id = session.get("user_id") or account.client_code
        return OrderDialect(root=root, token=session.get("token", ""), user_id=user_id)

    @classmethod
    def update_from_stream(cls, account_id: int, message: Mapping[str, Any]) -> BrokerUpdate | None:
        """An ``order`` or ``trade`` event as a BrokerUpdate: the order's status and filled quantity,
        with the execution it carries as a fill (by its ``ExecutionID``, so a repeat is harmless).
        None for an order without our tag, or a transitional status without an execution. Raises
        ValueError for a message not in XTS's shape."""
        try:
            order = records.order_from(message)
        except PARSE_ERRORS as error:
            raise ValueError(f"not an XTS order message ({type(error).__name__})") from None
        if not order.tag:
            return None
        fill = None
        if order.execution_id and order.last_quantity > 0 and order.last_price and order.last_price > 0:
            fill = Fill(
                trade_id=order.execution_id,
                quantity=order.last_quantity,
                price=order.last_price,
                ts=order.executed_at or order.updated_at or timezone.now(),
                broker_order_id=order.app_order_id,
                exchange=EXCHANGES.get(order.segment, order.segment),
            )
        status = STATUSES.get(status_key(order.status))
        if status is None:
            if fill is None:
                return None
            status = "FILLED" if order.quantity and order.filled_quantity >= order.quantity else "PARTIALLY_FILLED"
        return BrokerUpdate(
            account_id=account_id,
            tag=order.tag,
            broker_order_id=order.app_order_id,
            status=status,
            ts=order.updated_at or timezone.now(),
            fill=fill,
            message=order.message[:500],
            filled_quantity=order.filled_quantity,
        )

    @classmethod
    def master_rows(cls, broker: str) -> Iterator[MasterRow | tuple[int, str]]:
        """Download broker ``broker``'s instrument master (every segment) and read it; with a live
        session's Market Data token where an account of the broker has one. Raises BrokerError when
        the download fails."""
        session = XtsSession(
            broker=broker,
            root=catalogue.endpoint(broker, "master"),
            token=_market_token(broker),
            limit_key=f"master:{broker}",
        )
        result = session.call(endpoints(broker).master, body={"exchangeSegmentList": list(MASTER_SEGMENTS)})
        if not isinstance(result, str):
            raise BrokerUnavailable(f"{broker}'s instrument master is not text", extra={"malformed": "master"})
        return parse_master(result)

    # --- helpers ------------------------------------------------------------------------------------
    def _client(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "clientID": self.client_id} if self.client_id else fields

    def _call(self, session: XtsSession, endpoint: Any, **kwargs: Any) -> Any:
        """One call; a refused token also ends the account's session here, so pages show it lapsed and
        orders are refused before sending until the trader signs in again."""
        try:
            return session.call(endpoint, **kwargs)
        except BrokerSessionExpired as error:
            session_end(account_id=self.account_id, reason=f"XTS: {error.message}"[:200])
            raise

    def _orders(self) -> list[records.XtsOrder]:
        result = self._call(self.interactive, self.calls.orders, params=self._client({}))
        return self.interactive.wire.parse(
            "the order book", lambda r: [records.order_from(o) for o in (r or [])], result
        )

    def _order(self, broker_order_id: str) -> records.XtsOrder:
        """The order's latest state from its history (``GET /interactive/orders?appOrderID=``)."""
        if not (isinstance(broker_order_id, str) and broker_order_id.isascii() and broker_order_id.isdigit()):
            raise BrokerOrderNotFound(f"XTS has no order {str(broker_order_id)[:40]!r}.")
        params = self._client({"appOrderID": broker_order_id})
        result = self._call(self.interactive, self.calls.orders, params=params, order_specific=True)
        history = self.interactive.wire.parse(
            "the order's history", lambda r: [records.order_from(o) for o in (r or [])], result
        )
        history = [state for state in history if state.app_order_id == broker_order_id]
        if not history:
            raise BrokerOrderNotFound(
                f"XTS has no order {broker_order_id}.", extra={"broker_order_id": broker_order_id}
            )
        return history[-1]


def _order(order: records.XtsOrder, fills: list[Fill]) -> BrokerOrder:
    order_type = order_type_of(order.order_type)
    return BrokerOrder(
        tag=order.tag,
        broker_order_id=order.app_order_id,
        status=status_of(order.status, current="OPEN"),
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        fills=tuple(fills),
        message=order.message,
        order_type=order_type,
        price=order.price if order_type in ("LIMIT", "SL") else None,
        trigger_price=order.trigger_price if order_type in ("SL", "SL-M") else None,
    )


def _quote_ticks(result: Any) -> list[Any]:
    ticks = []
    for item in result["listQuotes"] or []:
        payload = decode_json(item.encode()) if isinstance(item, str) else item
        try:
            ticks.append(tick_from(payload))
        except MalformedFrame as error:
            raise ValueError(str(error)) from None
    return ticks


def _symbol(instrument_id: int, what: str) -> BrokerSymbol:
    return broker_symbol_required(
        broker=BROKER, instrument_id=instrument_id, what=what, master="the XTS instrument master (no XTS mapping)"
    )


def _instrument(instrument_id: int, what: str) -> tuple[str, int]:
    """(XTS segment, exchange instrument id) of our instrument. Raises BrokerRejected
    ``broker_instrument_not_mapped`` (not sent) when the XTS mapping lacks it."""
    symbol = _symbol(instrument_id, what)
    try:
        return parse_token(symbol.token)
    except ValueError:
        raise BrokerRejected(
            f"{what}'s XTS token is malformed: nothing was sent.",
            code="broker_instrument_not_mapped",
            extra={"instrument_id": instrument_id},
        ) from None


def _ours(segment: str, instrument_id: int) -> int | None:
    try:
        return instrument_id_for_token(broker=BROKER, token=token_of(segment, instrument_id))
    except ValueError:
        return None


def _unsupported(what: str, value: Any) -> Any:
    raise BrokerRejected(
        f"XTS takes no {what} {str(value)[:20]!r}: nothing was sent.",
        code="broker_cannot_order",
        extra={what: str(value)[:20]},
    )


def _term(value: str, allowed: frozenset[str], what: str) -> str:
    return value if value in allowed else _unsupported(what, value)


def _quantity(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return _unsupported("quantity", value)
    return value


def _limit(order_type: str, price: Decimal | None) -> Decimal | int:
    if order_type not in ("LIMIT", "SL"):
        return 0
    if price is None or not price.is_finite() or price <= 0:
        return _unsupported("limit price", price)
    return price


def _stop(order_type: str, trigger: Decimal | None) -> Decimal | int:
    if order_type not in ("SL", "SL-M"):
        return 0
    if trigger is None or not trigger.is_finite() or trigger <= 0:
        return _unsupported("trigger price", trigger)
    return trigger


def _market_token(broker: str) -> str:
    """The Market Data token of a live session of one of ``broker``'s accounts, or "" when none is live."""
    for account in BrokerAccount.objects.filter(broker=broker, is_active=True).order_by("pk")[:20]:
        secrets = session_secrets(account)
        if secrets and secrets.get("md_token"):
            return secrets["md_token"]
    return ""
