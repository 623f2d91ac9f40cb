"""NorenOMS as a broker family: the broker contract over ``families.noren.client.NorenClient``.

An adapter is one account's: the account's client code is Noren's ``uid`` (and ``actid``, as the
SDK sends it), the session's ``susertoken`` (its only secret) the ``jKey``. Noren names an order by ``remarks``, where
our order's tag goes. Instruments are Noren's ``<exch>|<token>`` (Noren's token is the exchange's,
repeated across exchanges, so the family's mapping keys it with its exchange, as the websocket does).

Two sign-ins: ``NorenAdapter`` (QuickAuth with password, TOTP, vendor code and app key: Shoonya and
most Noren brokers) and ``FlattradeAdapter`` (a redirect to the broker's login page, then a request
code exchanged for the token). Both sessions end at ``CUTOFF`` (IST) or when Noren says "Session Expired".
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

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
from brokers.families.login import sha256_hex, totp_now
from brokers.families.wire import Endpoint, WireClient
from brokers.instrument_map import BrokerSymbol, broker_symbol_required, instrument_map
from brokers.margin import product_margin_rate
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import next_cutoff, session_end
from families.noren import records
from families.noren.client import NorenClient, require_text
from families.noren.errors import NotOk, answer
from families.noren.mapping import (
    EXCHANGES,
    ORDER_TYPES,
    ORDER_TYPES_BACK,
    PRODUCTS,
    PRODUCTS_BACK,
    SIDES,
    VALIDITIES,
    status_of,
    to_noren,
)
from marketdata.quotes import DepthLevel, Quote

FAMILY = "noren"  # the adapter's code and its instrument mapping's ``broker``
# No Noren document read states when a session ends; tokens are issued per trading day, so the
# session is ended at 06:00 IST (before the 09:00 pre-open), and earlier whenever Noren answers
# "Session Expired" (``_Session``).
CUTOFF = "06:00"
APK_VERSION = "1.0.0"
SOURCE = "API"
MIS_LEVERAGE, FO_MARGIN_PCT = 5, 15  # the ledger's margin estimate (the broker's RMS has the final word)
_ORDER_NO = re.compile(r"\d{1,32}")
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def noren_token(exchange: str, token: str) -> str:
    """The family's token for an instrument: ``NSE|2885`` (Noren's exchange and the exchange's token)."""
    return f"{exchange}|{token}"


class NorenAdapter(BrokerAdapter):
    """One account at a NorenOMS broker (Shoonya's reference entry; see the module docstring)."""

    code: ClassVar[str] = FAMILY
    capabilities: ClassVar[Capabilities] = Capabilities(
        exchanges=frozenset(EXCHANGES),
        order_types=frozenset(ORDER_TYPES),
        products=frozenset(PRODUCTS),
        validities=frozenset(VALIDITIES),
        varieties=frozenset({"regular"}),
        gtt=False,
        market_protection=False,
        max_modifications=None,
        tag_length=20,
    )
    login: ClassVar[Login | None] = Login(
        kind="totp", credentials=("password", "totp_secret", "vendor_code", "api_secret", "imei"), expires_at_ist=CUTOFF
    )

    def __init__(self, *, account_id: int, client: NorenClient, uid: str, actid: str) -> None:
        super().__init__(account_id=account_id)
        self.client = client
        self.uid, self.actid = uid, actid

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> NorenAdapter:
        session = session or {}
        uid = account.client_code
        client = NorenClient(
            broker=account.broker,
            root=catalogue.endpoint(account.broker, "api"),
            token=session.get("susertoken"),
            limit_key=f"account:{account.pk}",
        )
        return cls(account_id=account.pk, client=client, uid=uid, actid=uid)

    # --- sign-in ----------------------------------------------------------------------------------
    @classmethod
    def login_direct(cls, account: Any) -> SignIn:
        """QuickAuth with the account's stored password (sent as its SHA-256), the TOTP of its stored
        secret, its vendor code, its app key (SHA-256 of ``uid|api_secret``) and IMEI. Raises
        ValueError for missing credentials, BrokerRejected when Noren refuses them."""
        credentials = broker_credentials_get(account=account)
        missing = [
            name
            for name in ("password", "totp_secret", "vendor_code", "api_secret", "imei")
            if not credentials.get(name)
        ]
        if missing:
            raise ValueError(f"Store the account's {', '.join(missing)} first.")
        uid = account.client_code or ""
        if not _CODE.fullmatch(uid):
            raise ValueError("The account's client code (Noren's user id) is missing or malformed.")
        values = {
            "source": SOURCE,
            "apkversion": APK_VERSION,
            "uid": uid,
            "pwd": sha256_hex(credentials["password"]),
            "factor2": totp_now(credentials["totp_secret"]),
            "vc": credentials["vendor_code"],
            "appkey": sha256_hex(f"{uid}|{credentials['api_secret']}"),
            "imei": credentials["imei"],
        }
        client = NorenClient(
            broker=account.broker,
            root=catalogue.endpoint(account.broker, "api"),
            token=None,
            limit_key=f"account:{account.pk}",
        )
        data = client.obj("QuickAuth", values)
        token = require_text(data, "susertoken", "the sign-in")
        return SignIn(secrets={"susertoken": token}, expires_at=next_cutoff(timezone.now(), CUTOFF), broker_user=uid)

    # --- streams and the master ---------------------------------------------------------------------
    @classmethod
    def market_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        """Noren's websocket for touchline ticks of the subscribed instruments."""
        from families.noren.stream import NorenDialect

        uid = account.client_code
        return NorenDialect(
            url=catalogue.endpoint(account.broker, "ws"), uid=uid, actid=uid, token=session.get("susertoken", "")
        )

    @classmethod
    def order_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        """Noren's websocket subscribed to the account's order updates (``t: "om"``). Noren serves both
        on one connection and documents one connection per session: a process that wants ticks and
        updates runs this dialect as its market feed too."""
        from families.noren.stream import NorenDialect

        uid = account.client_code
        try:
            url = catalogue.endpoint(account.broker, "order_ws")
        except catalogue.UnknownBrokerEntry:
            url = catalogue.endpoint(account.broker, "ws")
        return NorenDialect(url=url, uid=uid, actid=uid, token=session.get("susertoken", ""), orders=True)

    @classmethod
    def update_from_stream(cls, account_id: int, message: Mapping[str, Any]) -> BrokerUpdate | None:
        """An ``om`` message as a BrokerUpdate (with its fill when ``reporttype`` is Fill); None for
        an order without our tag. Raises ValueError for a message not in the documented shape."""
        return update_of(account_id, message)

    @classmethod
    def master_rows(cls, broker: str) -> Iterable[Any]:
        from families.noren.master import download_master

        return download_master(broker)

    # --- writes -----------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """PlaceOrder with our tag in ``remarks``; return Noren's order number with OPEN. Raises
        BrokerRejected ``broker_instrument_not_mapped`` (nothing sent) for an instrument Noren's master
        lacks, ValueError for a term Noren does not offer, else as ``errors.answer`` maps Noren's answer."""
        if request.variety != "regular":
            raise ValueError(f"NorenOMS orders have no variety {request.variety!r} here")
        symbol = noren_symbol(request.instrument_id, what=f"{request.exchange}:{request.tradingsymbol}")
        order_type = to_noren(ORDER_TYPES, request.order_type, "order type")
        values = {
            "ordersource": SOURCE,
            "uid": self.uid,
            "actid": self.actid,
            "trantype": to_noren(SIDES, request.side, "side"),
            "prd": to_noren(PRODUCTS, request.product, "product"),
            "exch": to_noren(EXCHANGES, symbol.exchange, "exchange"),
            "tsym": symbol.tradingsymbol,
            "qty": _quantity(request.quantity),
            "dscqty": "0",
            "prctyp": order_type,
            "prc": _price(request.order_type, request.price),
        }
        if request.order_type in {"SL", "SL-M"}:
            if request.trigger_price is None:
                raise ValueError("a stop-loss order needs a trigger price")
            values["trgprc"] = records.wire_price(request.trigger_price)
        values["ret"] = to_noren(VALIDITIES, request.validity, "validity")
        values["remarks"] = request.tag
        data = self._call(lambda c: c.obj("PlaceOrder", values))
        return PlaceResult(broker_order_id=require_text(data, "norenordno", "an order placement"), status="OPEN")

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """ModifyOrder. Noren takes the whole order (exchange, symbol, quantity, price type, price), so
        the terms the change leaves alone are read from the order's latest state (SingleOrdHist).
        Raises BrokerOrderNotFound for an order Noren does not have."""
        number = _order_number(broker_order_id)
        latest = self._latest(number)
        order_type = change.order_type or ORDER_TYPES_BACK.get(str(latest.get("prctyp")), "")
        prctyp = to_noren(ORDER_TYPES, order_type, "order type")
        quantity = change.quantity if change.quantity is not None else records.integer(latest.get("qty"))
        if change.price is not None or order_type not in {"LIMIT", "SL"}:
            price = _price(order_type, change.price)
        else:
            price = records.text(latest.get("prc"))
        values = {
            "ordersource": SOURCE,
            "uid": self.uid,
            "actid": self.actid,
            "norenordno": number,
            "exch": records.text(latest.get("exch")),
            "tsym": records.text(latest.get("tsym")),
            "qty": _quantity(quantity),
            "prctyp": prctyp,
            "prc": price,
        }
        if order_type in {"SL", "SL-M"}:
            if change.trigger_price is not None:
                values["trgprc"] = records.wire_price(change.trigger_price)
            elif latest.get("trgprc"):
                values["trgprc"] = records.text(latest.get("trgprc"))
            else:
                raise ValueError("a stop-loss order needs a trigger price")
        self._call(lambda c: c.obj("ModifyOrder", values, order_specific=True))

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """CancelOrder; the cancellation arrives as an order update. Raises BrokerOrderNotFound for an
        order Noren does not have (or no longer can cancel, in its words)."""
        values = {"ordersource": SOURCE, "uid": self.uid, "norenordno": _order_number(broker_order_id)}
        self._call(lambda c: c.obj("CancelOrder", values, order_specific=True))

    # --- reads ------------------------------------------------------------------------------------
    def order_book(self) -> list[BrokerOrder]:
        """The day's orders (OrderBook), each with its fills (TradeBook, read once)."""
        rows = self._call(lambda c: c.book("OrderBook", {"ordersource": SOURCE, "uid": self.uid}))
        fills: dict[str, list[Fill]] = defaultdict(list)
        if rows:
            for fill in self.trades():
                fills[fill.broker_order_id].append(fill)
        return self.client.parse("the order book", lambda rows: [order_of(row, fills) for row in rows], rows)

    def trades(self) -> list[Fill]:
        rows = self._call(lambda c: c.book("TradeBook", {"ordersource": SOURCE, "uid": self.uid, "actid": self.actid}))
        return self.client.parse("the trade book", lambda rows: [fill_of(row) for row in rows], rows)

    def positions(self) -> list[BrokerPosition]:
        """Net positions (PositionBook) in instruments the family's mapping holds; flat ones left out."""
        rows = self._call(lambda c: c.book("PositionBook", {"uid": self.uid, "actid": self.actid}))
        find = instrument_finder()

        def parse(rows: list[dict[str, Any]]) -> list[BrokerPosition]:
            out = []
            for row in rows:
                quantity = records.integer(row.get("netqty"))
                instrument_id = find(records.text(row.get("exch")), row.get("token"), row.get("tsym"))
                if quantity and instrument_id is not None:
                    out.append(
                        BrokerPosition(
                            instrument_id=instrument_id,
                            product=PRODUCTS_BACK.get(records.text(row.get("prd")), records.text(row.get("prd"))),
                            net_quantity=quantity,
                            average_price=records.optional_decimal(row.get("netavgprc")),
                        )
                    )
            return out

        return self.client.parse("the positions", parse, rows)

    def holdings(self) -> list[BrokerHolding]:
        """Delivery holdings (Holdings, ``prd`` C): the saleable quantity (holdqty + btstqty + dpqty
        + benqty + unplgdqty - usedqty, Noren's formula) at the uploaded average price."""
        rows = self._call(lambda c: c.book("Holdings", {"uid": self.uid, "actid": self.actid, "prd": "C"}))
        find = instrument_finder()

        def parse(rows: list[dict[str, Any]]) -> list[BrokerHolding]:
            out = []
            for row in rows:
                quantity = sum(
                    records.optional_integer(row.get(name))
                    for name in ("holdqty", "btstqty", "dpqty", "benqty", "unplgdqty")
                ) - records.optional_integer(row.get("usedqty"))
                listings = row.get("exch_tsym") or []
                if not isinstance(listings, list):
                    raise ValueError("exch_tsym is not a list")
                instrument_id = next(
                    (
                        found
                        for item in listings
                        if (found := find(records.text(item.get("exch")), item.get("token"), item.get("tsym")))
                        is not None
                    ),
                    None,
                )
                if quantity > 0 and instrument_id is not None:
                    out.append(
                        BrokerHolding(
                            instrument_id=instrument_id,
                            quantity=quantity,
                            average_price=records.optional_decimal(row.get("upldprc")) or Decimal(0),
                        )
                    )
            return out

        return self.client.parse("the holdings", parse, rows)

    def funds(self) -> BrokerFunds:
        """Limits: ``cash`` and today's ``payin`` less ``marginused`` is what is available."""
        data = self._call(lambda c: c.obj("Limits", {"uid": self.uid, "actid": self.actid}))

        def parse(data: dict[str, Any]) -> BrokerFunds:
            cash = records.decimal(data.get("cash"))
            payin = records.optional_decimal(data.get("payin")) or Decimal(0)
            used = records.optional_decimal(data.get("marginused")) or Decimal(0)
            return BrokerFunds(
                cash=cash,
                margin_used=used,
                available=cash + payin - used,
                extra={
                    "payin": payin,
                    "collateral": records.optional_decimal(data.get("collateral")) or Decimal(0),
                },
            )

        return self.client.parse("the limits", parse, data)

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        """GetQuotes, one call per instrument the family's mapping holds (Noren quotes one at a time)."""
        mapped = instrument_map(FAMILY).by_instrument
        quotes: dict[int, Quote] = {}
        for pk in dict.fromkeys(instrument_ids):
            symbol = mapped.get(pk)
            if symbol is None or "|" not in symbol.token:
                continue
            exchange, token = symbol.token.split("|", 1)
            values = {"uid": self.uid, "exch": exchange, "token": token}
            data = self._call(functools.partial(_get_quote, values=values))
            quote = self.client.parse("a quote", functools.partial(quote_of, pk), data)
            if quote is not None:
                quotes[pk] = quote
        return quotes

    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        return product_margin_rate(
            product=product,
            instrument_type=instrument_type,
            side=side,
            mis_leverage=MIS_LEVERAGE,
            fo_margin_pct=FO_MARGIN_PCT,
        )

    # --- internals ----------------------------------------------------------------------------------
    def _call(self, call: Callable[[NorenClient], Any]) -> Any:
        """Run one call; Noren saying the session expired also ends the account's session here, so
        orders are refused before sending until the trader signs in again."""
        try:
            return call(self.client)
        except BrokerSessionExpired as error:
            session_end(account_id=self.account_id, reason=f"NorenOMS: {error.message}"[:200])
            raise

    def _latest(self, number: str) -> dict[str, Any]:
        rows = self._call(
            lambda c: c.book(
                "SingleOrdHist", {"ordersource": SOURCE, "uid": self.uid, "norenordno": number}, order_specific=True
            )
        )
        if not rows:
            raise BrokerOrderNotFound(f"NorenOMS has no order {number}.", extra={"broker_order_id": number})
        return rows[0]  # the latest state first


class FlattradeAdapter(NorenAdapter):
    """Flattrade's NorenOMS: the same calls, signed in through Flattrade's login page (``app_key``),
    whose ``code`` is exchanged at ``<auth>/trade/apitoken`` for the session token with
    ``api_secret = SHA-256(api_key + request_code + secret)``."""

    login: ClassVar[Login | None] = Login(kind="redirect", credentials=("api_key", "api_secret"), expires_at_ist=CUTOFF)

    @classmethod
    def login_direct(cls, account: Any) -> SignIn:
        raise NotImplementedError("Flattrade signs in through its login page (a redirect)")

    @classmethod
    def login_start(cls, account: Any, *, state: str) -> str:
        """Flattrade's login page for the account's API key, with ``state`` for our callback. Raises
        ValueError when the account has no API key stored."""
        api_key = broker_credentials_get(account=account).get("api_key", "")
        if not api_key:
            raise ValueError("Store the account's Flattrade API key and secret first.")
        base = catalogue.endpoint(account.broker, "login")
        separator = "&" if "?" in base else "?"
        return f"{base}{separator}app_key={quote(api_key, safe='')}&state={quote(state, safe='')}"

    @classmethod
    def login_finish(cls, account: Any, params: Mapping[str, str]) -> SignIn:
        """Exchange the redirect's ``code`` for the session token. Raises ValueError for a missing or
        malformed code, BrokerError when Flattrade refuses it."""
        code = params.get("code", "")
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise ValueError("Flattrade did not complete the sign-in.")
        credentials = broker_credentials_get(account=account)
        api_key, secret = credentials.get("api_key", ""), credentials.get("api_secret", "")
        if not api_key or not secret:
            raise ValueError("Store the account's Flattrade API key and secret first.")
        client_id = account.client_code or ""
        if not _CODE.fullmatch(client_id):
            raise ValueError("The account's client code (Flattrade's user id) is missing or malformed.")
        if params.get("client") and params.get("client") != client_id:
            raise ValueError("Flattrade signed in another client than the account's.")
        wire = WireClient(
            broker=account.broker,
            root=catalogue.endpoint(account.broker, "auth"),
            answer=answer,
            limit_key=f"account:{account.pk}",
        )
        data = wire.call(
            Endpoint("POST", "/trade/apitoken", write=True),
            json_body={"api_key": api_key, "request_code": code, "api_secret": sha256_hex(api_key + code + secret)},
        )
        if isinstance(data, NotOk):
            raise data.error()
        if not isinstance(data, dict):
            raise BrokerRejected("Flattrade's token answer was not an object.")
        token = require_text(data, "token", "the sign-in")
        return SignIn(
            secrets={"susertoken": token},
            expires_at=next_cutoff(timezone.now(), CUTOFF),
            broker_user=client_id,
        )


# --- reading Noren's rows -------------------------------------------------------------------------
def order_of(row: Mapping[str, Any], fills: Mapping[str, list[Fill]] | None = None) -> BrokerOrder:
    """One OrderBook (or SingleOrdHist) row as a BrokerOrder; raises ValueError for a malformed row."""
    number = records.text(row.get("norenordno"))
    quantity = records.integer(row.get("qty"))
    filled = records.optional_integer(row.get("fillshares"))
    order_type = ORDER_TYPES_BACK.get(records.text(row.get("prctyp")))
    return BrokerOrder(
        tag=records.text(row.get("remarks") or ""),
        broker_order_id=number,
        status=status_of(records.text(row.get("status") or ""), current="OPEN", filled=filled, quantity=quantity),
        quantity=quantity,
        filled_quantity=filled,
        average_price=records.optional_decimal(row.get("avgprc")) if filled else None,
        fills=tuple((fills or {}).get(number, ())),
        message=records.text(row.get("rejreason") or ""),
        order_type=order_type,
        price=records.optional_decimal(row.get("prc")) if order_type in {"LIMIT", "SL"} else None,
        trigger_price=records.optional_decimal(row.get("trgprc")) if order_type in {"SL", "SL-M"} else None,
    )


def fill_of(row: Mapping[str, Any]) -> Fill:
    """One TradeBook row (or an ``om`` message of a fill) as a Fill; raises ValueError when malformed."""
    trade_id = records.text(row.get("flid"))
    if not trade_id:
        raise ValueError("a fill without flid")
    return Fill(
        trade_id=trade_id,
        quantity=records.integer(row.get("flqty")),
        price=records.decimal(row.get("flprc")),
        ts=records.noren_time(row.get("fltm")) or records.noren_time(row.get("norentm")) or timezone.now(),
        broker_order_id=records.text(row.get("norenordno")),
        exchange=records.text(row.get("exch")),
    )


def update_of(account_id: int, message: Mapping[str, Any], *, current: str = "OPEN") -> BrokerUpdate | None:
    """An order update (``t: "om"``) as a BrokerUpdate; None for an order without our tag. Raises
    ValueError for a message not in the documented shape."""
    if not isinstance(message, Mapping) or message.get("t", "om") != "om":
        raise ValueError("not a NorenOMS order update")
    tag = records.text(message.get("remarks") or "")
    number = records.text(message.get("norenordno"))
    if not number:
        raise ValueError("an order update without norenordno")
    report = records.text(message.get("reporttype") or "")
    quantity = records.optional_integer(message.get("qty"))
    filled = records.optional_integer(message.get("fillshares"))
    fill = fill_of(message) if report.upper() == "FILL" else None
    if not tag:
        return None
    return BrokerUpdate(
        account_id=account_id,
        tag=tag,
        broker_order_id=number,
        status=status_of(
            records.text(message.get("status") or ""), current=current, filled=filled, quantity=quantity, report=report
        ),
        ts=records.noren_time(message.get("exch_tm")) or records.noren_time(message.get("norentm")) or timezone.now(),
        fill=fill,
        message=records.text(message.get("rejreason") or ""),
        filled_quantity=filled if quantity else None,
    )


def quote_of(instrument_id: int, data: Mapping[str, Any]) -> Quote | None:
    """A GetQuotes answer as our instrument's quote; None when nothing has traded (no last price)."""
    ltp = records.optional_decimal(data.get("lp"))
    if ltp is None or ltp <= 0:
        return None
    bids, asks = [], []
    for level in range(1, 6):
        price, qty = records.optional_decimal(data.get(f"bp{level}")), records.optional_integer(data.get(f"bq{level}"))
        if price and qty:
            bids.append(DepthLevel(price, qty, records.optional_integer(data.get(f"bo{level}"), 1)))
        price, qty = records.optional_decimal(data.get(f"sp{level}")), records.optional_integer(data.get(f"sq{level}"))
        if price and qty:
            asks.append(DepthLevel(price, qty, records.optional_integer(data.get(f"so{level}"), 1)))
    return Quote(
        instrument_id=instrument_id,
        ltp=ltp,
        ts=timezone.now(),
        bid=bids[0].price if bids else None,
        ask=asks[0].price if asks else None,
        bid_qty=bids[0].quantity if bids else 0,
        ask_qty=asks[0].quantity if asks else 0,
        volume=records.optional_integer(data.get("v")),
        open=records.optional_decimal(data.get("o")) or None,
        high=records.optional_decimal(data.get("h")) or None,
        low=records.optional_decimal(data.get("l")) or None,
        close=records.optional_decimal(data.get("c")) or None,
        bids=tuple(bids),
        asks=tuple(asks),
    )


def noren_symbol(instrument_id: int, *, what: str) -> BrokerSymbol:
    """How Noren names our instrument, from the family's mapping. Raises BrokerRejected
    ``broker_instrument_not_mapped`` (nothing sent) when the broker's master does not list it."""
    return broker_symbol_required(
        broker=FAMILY, instrument_id=instrument_id, what=what, master="the NorenOMS symbol master (no mapping)"
    )


def instrument_finder() -> Callable[[str, Any, Any], int | None]:
    """Our instrument for a row's exchange and token (else its exchange and trading symbol); None when
    the family's mapping does not list it."""
    mapping = instrument_map(FAMILY)
    by_name: dict[tuple[str, str], int] = {}

    def find(exchange: str, token: Any, tradingsymbol: Any) -> int | None:
        if isinstance(token, str) and token and (found := mapping.by_token.get(noren_token(exchange, token))):
            return found
        if not by_name:
            by_name.update({(s.exchange, s.tradingsymbol): pk for pk, s in mapping.by_instrument.items()})
        return by_name.get((exchange, tradingsymbol)) if isinstance(tradingsymbol, str) else None

    return find


def _get_quote(client: NorenClient, *, values: dict[str, str]) -> dict[str, Any]:
    return client.obj("GetQuotes", values)


def _order_number(value: str) -> str:
    if not isinstance(value, str) or not _ORDER_NO.fullmatch(value):
        raise BrokerOrderNotFound(
            f"NorenOMS has no order {str(value)[:40]!r}.", extra={"broker_order_id": str(value)[:40]}
        )
    return value


def _quantity(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("a quantity must be a positive whole number")
    return str(value)


def _price(order_type: str, price: Decimal | None) -> str:
    """``prc``: the limit price of LIMIT and SL orders, "0" for market and SL-M orders."""
    if order_type in {"LIMIT", "SL"}:
        if price is None:
            raise ValueError(f"a {order_type} order needs a price")
        return records.wire_price(price)
    return "0"
