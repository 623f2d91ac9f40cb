"""Zerodha Kite Connect v3 as a broker family: the broker contract over ``kite.client.KiteClient``.

An adapter is one account's: its API key from the account's sealed credentials, its access token
from the account's live session (``brokers.services.sessions``; the registry hands it over), its
rate limits counted per account. Kite names an order by its ``tag`` (our ``Order.broker_tag``).
Kite's postbacks and order messages carry an order's filled quantity but no trades, so updates
built from them carry ``filled_quantity`` and the order system fetches the trades through
``order_by_tag`` (reconciliation), which reads them by trade id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.utils import timezone

from brokers.adapters.base import (
    ALL_EXCHANGES,
    GTT_OCO,
    GTT_SINGLE,
    GTT_STATUSES,
    BrokerAdapter,
    BrokerCandle,
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
    Gtt,
    GttLeg,
    GttOrder,
    Login,
    MarginLeg,
    PlaceResult,
    SignIn,
    no_history,
)
from brokers.instrument_map import BrokerSymbol, broker_symbol_required, instrument_map
from brokers.margin import product_margin_rate
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import next_cutoff, session_end
from kite import records
from kite.client import HISTORICAL_DAYS, KiteClient
from kite.records import GttRequest, KiteGtt, KiteOrder, KiteOrderParams, KiteTrade
from marketdata.quotes import DepthLevel, Quote, get_quote

# Kite's order statuses in the OMS vocabulary. Kite's transitional statuses (a request on its way
# through Kite's OMS or the exchange) leave the order working as it was: they map to None.
STATUSES: dict[str, str | None] = {
    "OPEN": "OPEN",
    "TRIGGER PENDING": "TRIGGER_PENDING",
    "COMPLETE": "FILLED",
    "CANCELLED": "CANCELLED",
    "REJECTED": "REJECTED",
    "PUT ORDER REQ RECEIVED": None,
    "VALIDATION PENDING": None,
    "OPEN PENDING": None,
    "MODIFY VALIDATION PENDING": None,
    "MODIFY PENDING": None,
    "CANCEL PENDING": None,
    "AMO REQ RECEIVED": None,
    "TRIGGER PENDING VALIDATION": None,
}
# Our GTT kinds as Kite names them, both ways.
GTT_TYPES = {GTT_SINGLE: records.GTT_SINGLE, GTT_OCO: records.GTT_TWO_LEG}
GTT_KINDS = {kite: ours for ours, kite in GTT_TYPES.items()}
BROKER = "kite"  # the family's code: its mapping in brokers.instrument_map
# Market orders and SL-M carry a market protection: -1 lets Kite choose it (Kite refuses 0).
AUTO_PROTECTION = -1
# The ledger's margin estimate for Kite accounts (Kite's RMS has the final word).
MIS_LEVERAGE, FO_MARGIN_PCT = 5, 15


def status_of(kite_status: str, *, current: str) -> str:
    """Return Kite's status in the OMS vocabulary; a transitional one keeps ``current``."""
    mapped = STATUSES.get(kite_status.upper())
    return current if mapped is None else mapped


class KiteAdapter(BrokerAdapter):
    """One account at Zerodha through Kite Connect v3."""

    code: ClassVar[str] = "kite"
    capabilities: ClassVar[Capabilities] = Capabilities(
        exchanges=ALL_EXCHANGES,
        order_types=frozenset({"MARKET", "LIMIT", "SL", "SL-M"}),
        products=frozenset({"CNC", "MIS", "NRML"}),
        validities=frozenset({"DAY", "IOC"}),
        varieties=frozenset({"regular", "amo", "co", "iceberg"}),
        gtt=True,
        margins=True,
        market_protection=True,
        max_modifications=25,
        tag_length=20,
        history=tuple(HISTORICAL_DAYS.items()),
    )
    login: ClassVar[Login | None] = Login(
        kind="redirect", credentials=("api_key", "api_secret"), expires_at_ist="06:00"
    )

    def __init__(self, *, account_id: int, client: KiteClient) -> None:
        super().__init__(account_id=account_id)
        self.client = _SessionEnding(client, account_id)

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> KiteAdapter:
        credentials = broker_credentials_get(account=account)
        client = KiteClient(
            credentials.get("api_key", ""),
            (session or {}).get("access_token"),
            root=settings.KITE_API_ROOT,
            limit_key=f"account:{account.pk}",
        )
        return cls(account_id=account.pk, client=client)

    # --- the daily login -------------------------------------------------------------------------
    @classmethod
    def login_start(cls, account: Any, *, state: str) -> str:
        """Kite's login page for the account's API key; ``state`` comes back in ``redirect_params``.
        Raises ValueError when the account has no API key stored."""
        api_key = broker_credentials_get(account=account).get("api_key", "")
        if not api_key:
            raise ValueError("Store the account's Kite API key and secret first.")
        return KiteClient(api_key).login_url(base=settings.KITE_LOGIN_URL, redirect_params=f"state={state}")

    @classmethod
    def login_finish(cls, account: Any, params: Mapping[str, str]) -> SignIn:
        """Exchange the redirect's ``request_token`` for an access token (checksum SHA-256(api_key
        + request_token + api_secret)); the session ends at Kite's 06:00 IST cut-off."""
        request_token = params.get("request_token", "")
        if params.get("status") != "success" or not request_token.isalnum() or len(request_token) > 64:
            raise ValueError("Kite did not complete the sign-in.")
        credentials = broker_credentials_get(account=account)
        client = KiteClient(credentials.get("api_key", ""), root=settings.KITE_API_ROOT)
        session = client.generate_session(request_token, credentials.get("api_secret", ""))
        return SignIn(
            secrets={"access_token": session.access_token, "public_token": session.public_token},
            expires_at=next_cutoff(timezone.now(), "06:00"),
            broker_user=session.profile.user_id,
        )

    # --- writes -----------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Send the order (variety ``request.variety``: a cover order with its stop-loss trigger, an
        iceberg with its legs) tagged with its broker tag; return Kite's order id with OPEN (Kite's
        status follows by postback). Raises as ``kite.errors`` maps Kite's answer."""
        market = request.order_type in {"MARKET", "SL-M"}
        stop = request.order_type in {"SL", "SL-M"} or request.variety == "co"  # a cover order's stop-loss
        symbol = kite_symbol(request.instrument_id, what=f"{request.exchange}:{request.tradingsymbol}")
        params = KiteOrderParams(
            exchange=symbol.exchange,
            tradingsymbol=symbol.tradingsymbol,
            transaction_type=request.side,
            quantity=request.quantity,
            product=request.product,
            order_type=request.order_type,
            price=request.price if request.order_type in {"LIMIT", "SL"} else None,
            trigger_price=request.trigger_price if stop else None,
            validity=request.validity,
            iceberg_legs=request.iceberg_legs if request.variety == "iceberg" else None,
            iceberg_quantity=request.iceberg_quantity if request.variety == "iceberg" else None,
            tag=request.tag,
            market_protection=AUTO_PROTECTION if market else None,
        )
        order_id = self.client.place_order(request.variety, params)
        return PlaceResult(broker_order_id=order_id, status="OPEN")

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Modify the order at its own variety's path (``PUT /orders/:variety/:order_id``)."""
        self.client.modify_order(
            variety,
            broker_order_id,
            quantity=change.quantity,
            price=change.price if change.order_type in {None, "LIMIT", "SL"} else None,
            order_type=change.order_type,
            trigger_price=change.trigger_price,
        )

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """Cancel the order at its own variety's path (``DELETE /orders/:variety/:order_id``)."""
        self.client.cancel_order(variety, broker_order_id)

    # --- GTT --------------------------------------------------------------------------------------
    def gtt_place(self, order: GttOrder) -> str:
        """Place a single or two-leg (OCO) GTT; return Kite's trigger id. Raises BrokerRejected
        ``gtt_no_last_price`` (not sent) without a last price, else as ``kite.errors`` maps Kite's answer."""
        return str(self.client.place_gtt(_gtt_request(order)))

    def gtt_modify(self, *, trigger_id: str, order: GttOrder) -> str:
        return str(self.client.modify_gtt(_trigger_id(trigger_id), _gtt_request(order)))

    def gtt_delete(self, trigger_id: str) -> None:
        self.client.delete_gtt(_trigger_id(trigger_id))

    def gtt_list(self) -> list[Gtt]:
        """Return Kite's GTT book, newest first, each on our instrument where the Kite mapping has it."""
        book, find = self.client.gtts(), instrument_finder()
        gtts = [_gtt(g, find(g.instrument_token, g.exchange, g.tradingsymbol)) for g in book]
        return sorted(gtts, key=lambda g: g.created_at or timezone.now(), reverse=True)

    # --- reads ------------------------------------------------------------------------------------
    def order_book(self) -> list[BrokerOrder]:
        """Return the day's orders with their fills (the trade book, read once)."""
        fills: dict[str, list[Fill]] = defaultdict(list)
        for trade in self.client.trades():
            fills[trade.order_id].append(_fill(trade))
        return [_order(o, fills.get(o.order_id, [])) for o in self.client.orders()]

    def order_by_tag(self, tag: str) -> BrokerOrder | None:
        """Return the order tagged ``tag`` with its trades (read for that order only), or None."""
        for order in self.client.orders():
            if order.tag == tag or tag in order.tags:
                return _order(order, [_fill(t) for t in self.client.order_trades(order.order_id)])
        return None

    def trades(self) -> list[Fill]:
        return [_fill(trade) for trade in self.client.trades()]

    def positions(self) -> list[BrokerPosition]:
        positions, find = [], instrument_finder()
        for p in self.client.positions().net:
            instrument_id = find(p.instrument_token, p.exchange, p.tradingsymbol)
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
        holdings, find = [], instrument_finder()
        for h in self.client.holdings():
            instrument_id = find(h.instrument_token, h.exchange, h.tradingsymbol)
            if h.quantity and instrument_id is not None:
                holdings.append(
                    BrokerHolding(
                        instrument_id=instrument_id,
                        quantity=h.quantity,
                        average_price=h.average_price,
                        t1_quantity=h.t1_quantity,
                        last_price=h.last_price or None,
                        close_price=h.close_price or None,
                    )
                )
        return holdings

    def funds(self) -> BrokerFunds:
        """Return the equity segment's cash, margin used (debits) and net available margin."""
        equity = self.client.margins().equity
        if equity is None:
            raise BrokerUnavailable("Kite answered without the equity segment's margins.")
        return BrokerFunds(
            cash=equity.available.cash,
            margin_used=equity.utilised.debits,
            available=equity.net,
            extra={"live_balance": equity.available.live_balance, "collateral": equity.available.collateral},
        )

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        mapped = instrument_map(BROKER).by_instrument
        keys = {f"{s.exchange}:{s.tradingsymbol}": pk for pk in instrument_ids if (s := mapped.get(pk)) is not None}
        if not keys:
            return {}
        now = timezone.now()
        quotes: dict[int, Quote] = {}
        for key, q in self.client.quote(sorted(keys)).items():
            if key not in keys:
                continue
            bids = tuple(DepthLevel(level.price, level.quantity) for level in q.bids)
            asks = tuple(DepthLevel(level.price, level.quantity) for level in q.asks)
            quotes[keys[key]] = Quote(
                instrument_id=keys[key],
                ltp=q.last_price,
                ts=q.timestamp or now,
                volume=q.volume,
                bids=bids,
                asks=asks,
            )
        return quotes

    def historical_candles(
        self, *, instrument_id: int, interval: str, start: datetime, end: datetime
    ) -> list[BrokerCandle]:
        """Kite's bars of ``interval`` with ``start <= ts < end`` for our instrument, by its Kite token
        (Kite reads ``to`` as inclusive, so it is sent a second before ``end``), with open interest.
        Raises BrokerRejected ``broker_no_history`` for an interval Kite does not serve,
        ``broker_instrument_not_mapped`` for an instrument Kite's list lacks; ValueError for a span
        over Kite's limit (nothing sent)."""
        if interval not in HISTORICAL_DAYS:
            raise no_history(self, interval)
        symbol = kite_symbol(instrument_id, what=f"Instrument {instrument_id}")
        if not symbol.token.isdigit():
            raise BrokerRejected(
                f"Kite's token for instrument {instrument_id} is not a number: nothing was sent.",
                code="broker_instrument_not_mapped",
                extra={"instrument_id": instrument_id},
            )
        bars = self.client.historical_candles(int(symbol.token), interval, start, end - timedelta(seconds=1))
        return [
            BrokerCandle(ts=b.ts, open=b.open, high=b.high, low=b.low, close=b.close, volume=b.volume, oi=b.oi)
            for b in bars
            if start <= b.ts < end
        ]

    def order_margins(self, legs: list[MarginLeg]) -> Decimal:
        """Kite's margin for ``legs`` placed now (``KiteClient.order_margins``: its order-margins API
        for one, its basket-margins API for several, hedges and positions counted), each leg named
        through the Kite mapping. Raises BrokerRejected ``broker_instrument_not_mapped`` (nothing
        sent) for an instrument Kite's list lacks, and as ``kite.errors`` maps Kite's answer."""
        orders = []
        for leg in legs:
            symbol = kite_symbol(leg.instrument_id, what=f"{leg.exchange}:{leg.tradingsymbol}")
            priced = leg.order_type in {"LIMIT", "SL"}
            orders.append(
                {
                    "exchange": symbol.exchange,
                    "tradingsymbol": symbol.tradingsymbol,
                    "transaction_type": leg.side,
                    "variety": leg.variety,
                    "product": leg.product,
                    "order_type": leg.order_type,
                    "quantity": leg.quantity,
                    "price": float(leg.price) if priced and leg.price is not None else 0,
                    "trigger_price": float(leg.trigger_price) if leg.trigger_price is not None else 0,
                }
            )
        return self.client.order_margins(orders)

    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        return product_margin_rate(
            product=product,
            instrument_type=instrument_type,
            side=side,
            mis_leverage=MIS_LEVERAGE,
            fo_margin_pct=FO_MARGIN_PCT,
        )


class _SessionEnding:
    """The account's client: a token error from Kite (the session was revoked, or Kite ended it before
    our cut-off) also ends the account's session here, so pages show it lapsed and orders are refused
    before sending until the trader signs in again."""

    def __init__(self, client: KiteClient, account_id: int) -> None:
        self._client, self._account_id = client, account_id

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except BrokerSessionExpired as error:
                session_end(account_id=self._account_id, reason=f"Kite: {error.message}"[:200])
                raise

        return call


def _fill(trade: KiteTrade) -> Fill:
    return Fill(
        trade_id=trade.trade_id,
        quantity=trade.quantity,
        price=trade.average_price,
        ts=trade.fill_timestamp or trade.exchange_timestamp or timezone.now(),
        broker_order_id=trade.order_id,
        exchange=trade.exchange,
    )


def _order(order: KiteOrder, fills: list[Fill]) -> BrokerOrder:
    return BrokerOrder(
        tag=order.tag or "",
        broker_order_id=order.order_id,
        status=status_of(order.status, current="OPEN"),
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        fills=tuple(fills),
        message=order.status_message,
        order_type=order.order_type,
        price=order.price if order.order_type in {"LIMIT", "SL"} else None,
        trigger_price=order.trigger_price if order.order_type in {"SL", "SL-M"} else None,
    )


def update_of(account_id: int, order: KiteOrder, *, current: str = "OPEN") -> BrokerUpdate:
    """Return the BrokerUpdate a Kite order message (postback or websocket) reports: its status and
    its filled quantity, without trades (the order system fetches those)."""
    return BrokerUpdate(
        account_id=account_id,
        tag=order.tag or "",
        broker_order_id=order.order_id,
        status=status_of(order.status, current=current),
        ts=order.exchange_update_timestamp or order.order_timestamp or timezone.now(),
        message=order.status_message,
        filled_quantity=order.filled_quantity,
    )


def _gtt_request(order: GttOrder) -> GttRequest:
    """The Kite GTT for ``order``: our instrument as Kite names it (its exchange and trading symbol,
    as orders are sent), the last price given or else the quote store's."""
    instrument = kite_symbol(order.instrument_id, what=f"Instrument {order.instrument_id}")
    last_price = order.last_price
    if last_price is None:
        quote = get_quote(order.instrument_id)
        last_price = quote.ltp if quote is not None else None
    if last_price is None:
        raise BrokerRejected(
            f"{instrument.tradingsymbol} has no last price yet, which Kite needs to set a GTT: nothing was sent.",
            code="gtt_no_last_price",
            extra={"instrument_id": order.instrument_id},
        )
    legs = tuple(
        records.GttLeg(
            transaction_type=leg.side,
            quantity=leg.quantity,
            price=leg.price,
            product=leg.product,
            order_type=leg.order_type,
        )
        for leg in order.legs
    )
    return GttRequest(
        type=GTT_TYPES[order.kind],
        exchange=instrument.exchange,
        tradingsymbol=instrument.tradingsymbol,
        trigger_values=tuple(leg.trigger_price for leg in order.legs),
        last_price=last_price,
        legs=legs,
    )


def _trigger_id(trigger_id: str) -> int:
    """Kite's trigger id (a number) from ours (text); anything else names no GTT of Kite's."""
    if not (isinstance(trigger_id, str) and trigger_id.isascii() and trigger_id.isdigit() and len(trigger_id) <= 18):
        raise BrokerOrderNotFound(
            f"Kite has no GTT {str(trigger_id)[:40]!r}.", extra={"trigger_id": str(trigger_id)[:40]}
        )
    return int(trigger_id)


def _gtt(gtt: KiteGtt, instrument_id: int | None) -> Gtt:
    status = gtt.status.upper()
    return Gtt(
        trigger_id=str(gtt.id),
        kind=GTT_KINDS.get(gtt.type, gtt.type),
        status=status if status in GTT_STATUSES else gtt.status,
        instrument_id=instrument_id,
        exchange=gtt.exchange,
        tradingsymbol=gtt.tradingsymbol,
        legs=tuple(
            GttLeg(
                trigger_price=trigger,
                side=leg.transaction_type,
                quantity=leg.quantity,
                price=leg.price,
                product=leg.product,
                order_type=leg.order_type or "LIMIT",
            )
            for trigger, leg in zip(gtt.trigger_values, gtt.orders, strict=False)
        ),
        last_price=gtt.last_price or None,
        created_at=gtt.created_at,
        expires_at=gtt.expires_at,
    )


def kite_symbol(instrument_id: int, *, what: str) -> BrokerSymbol:
    """How Kite names our instrument (its exchange, trading symbol and token), from the Kite mapping
    (``brokers.instrument_map``, written by the daily instruments import). Raises BrokerRejected
    ``broker_instrument_not_mapped`` (nothing sent) when Kite's instruments list does not have it."""
    return broker_symbol_required(
        broker=BROKER, instrument_id=instrument_id, what=what, master="Kite's instruments list (no Kite mapping)"
    )


def instrument_finder() -> Callable[[int | None, str, str], int | None]:
    """A lookup of our instrument id for one of Kite's: by its token, else by its exchange and trading
    symbol (the reverse index built once, on first need); None when the Kite mapping does not list it."""
    mapping = instrument_map(BROKER)
    by_name: dict[tuple[str, str], int] = {}

    def find(token: int | None, exchange: str, tradingsymbol: str) -> int | None:
        if token and (found := mapping.by_token.get(str(token))) is not None:
            return found
        if not by_name:
            by_name.update({(s.exchange, s.tradingsymbol): pk for pk, s in mapping.by_instrument.items()})
        return by_name.get((exchange, tradingsymbol))

    return find
