"""Fyers API v3 as a broker family: the broker contract over ``families.fyers.client.FyersClient``.

An adapter is one account's: its app id from the account's sealed credentials, its access token from
the account's live session, its rate limits counted per account. Fyers names an order by the
``orderTag`` it was placed with (our ``Order.broker_tag``, 20 letters and digits), which its order
book answers with a source prefix ("1:<tag>"). Instruments are named by the Fyers mapping
(``brokers.instrument_map``, broker "fyers"): the fytoken as token and the symbol ticker
("NSE:RELIANCE-EQ") as trading symbol, written by the symbol master (``master_rows``).

Sign-in ("redirect"): the account's app id, app secret and the app's registered redirect URL are
stored as credentials; ``login_start`` sends the user to Fyers' ``generate-authcode`` page, Fyers sends
them back with ``auth_code``, and ``login_finish`` exchanges it (``POST /validate-authcode`` with
``appIdHash = sha256(app_id + ":" + app_secret)``) for the day's access token, a JWT whose ``exp``
ends the session and whose ``hsm_key`` opens the market feed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

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
from brokers.families.login import sha256_hex
from brokers.families.master import MasterRow
from brokers.families.wire import Endpoint, WireClient, malformed
from brokers.instrument_map import BrokerSymbol, broker_symbol_required, instrument_map
from brokers.margin import product_margin_rate
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import next_cutoff, session_end
from families.fyers import master, order_stream
from families.fyers.client import FyersClient
from families.fyers.hsm import HsmDialect
from families.fyers.mapping import (
    MASTER_FILES,
    ORDER_TYPE_NAMES,
    ORDER_TYPES,
    PRICED,
    PRODUCT_NAMES,
    PRODUCTS,
    SEGMENTS,
    SIDES,
    STOPPED,
    VALIDITIES,
    status_of,
    tag_of,
)
from families.fyers.rate_limits import LIMITS
from marketdata.quotes import Quote

FAMILY = "fyers"
MIS_LEVERAGE, FO_MARGIN_PCT = 5, 15  # the ledger's estimate; Fyers' RMS has the final word
QUOTES_PER_CALL = 50  # the SDK's documented maximum of symbols per quotes call
_ORDER_ID = re.compile(r"[0-9A-Za-z-]{1,40}")
_AUTH_CODE = re.compile(r"[A-Za-z0-9._-]{1,4096}")
TIME_FORMAT = "%d-%b-%Y %H:%M:%S"  # Fyers' "08-Jun-2023 10:11:55", IST


class FyersAdapter(BrokerAdapter):
    """One account at a broker of the Fyers API v3 family."""

    code: ClassVar[str] = FAMILY
    capabilities: ClassVar[Capabilities] = Capabilities(
        exchanges=frozenset(SEGMENTS.values()),
        order_types=frozenset(ORDER_TYPES),
        products=frozenset(PRODUCTS),
        validities=VALIDITIES,
        varieties=frozenset({"regular", "amo"}),  # an after-market order is Fyers' offlineOrder
        gtt=False,
        market_protection=False,
        tag_length=20,
    )
    login: ClassVar[Login | None] = Login(kind="redirect", credentials=("app_id", "secret_key", "redirect_uri"))

    def __init__(self, *, account_id: int, client: FyersClient) -> None:
        super().__init__(account_id=account_id)
        self.client = _SessionEnding(client, account_id)

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> FyersAdapter:
        app_id = broker_credentials_get(account=account).get("app_id", "")
        client = FyersClient(
            account.broker, app_id, (session or {}).get("access_token"), limit_key=f"account:{account.pk}"
        )
        return cls(account_id=account.pk, client=client)

    # --- the daily login -------------------------------------------------------------------------
    @classmethod
    def login_start(cls, account: Any, *, state: str) -> str:
        """Fyers' authorisation page for the account's app; it sends the user back to the app's
        redirect URL with ``auth_code`` and ``state``. Raises ValueError without stored credentials."""
        credentials = broker_credentials_get(account=account)
        if not credentials.get("app_id") or not credentials.get("redirect_uri"):
            raise ValueError("Store the account's Fyers app id, app secret and redirect URL first.")
        query = {
            "client_id": credentials["app_id"],
            "redirect_uri": credentials["redirect_uri"],
            "response_type": "code",
            "state": state,
        }
        return f"{catalogue.endpoint(account.broker, 'login')}?{urlencode(query)}"

    @classmethod
    def login_finish(cls, account: Any, params: Mapping[str, str]) -> SignIn:
        """Exchange the redirect's ``auth_code`` for the day's access token. Raises ValueError for a
        redirect that is not a completed sign-in, BrokerError when Fyers refuses the code."""
        auth_code = params.get("auth_code", "")
        if params.get("s", "ok") != "ok" or not isinstance(auth_code, str) or not _AUTH_CODE.fullmatch(auth_code):
            raise ValueError("Fyers did not complete the sign-in.")
        credentials = broker_credentials_get(account=account)
        app_id, secret = credentials.get("app_id", ""), credentials.get("secret_key", "")
        if not app_id or not secret:
            raise ValueError("Store the account's Fyers app id and app secret first.")
        client = FyersClient(account.broker, app_id, limit_key=f"account:{account.pk}")
        answer = client.validate_authcode(auth_code=auth_code, app_id_hash=sha256_hex(f"{app_id}:{secret}"))
        token = answer.get("access_token")
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise malformed("Fyers", "validate-authcode")
        claims = jwt_claims(token)
        secrets = {"access_token": token}
        if isinstance(answer.get("refresh_token"), str) and answer["refresh_token"]:
            secrets["refresh_token"] = answer["refresh_token"]
        return SignIn(secrets=secrets, expires_at=_expiry(claims), broker_user=str(claims.get("fy_id", ""))[:40])

    # --- streams and the symbol master ------------------------------------------------------------
    @classmethod
    def market_stream(cls, account: Any, session: Mapping[str, str]) -> HsmDialect:
        """The HSM market feed with the session's ``hsm_key``. Raises BrokerSessionExpired when the
        access token carries none (not a Fyers v3 token)."""
        app_id = broker_credentials_get(account=account).get("app_id", "")
        token = session.get("access_token", "")
        hsm_key = jwt_claims(token).get("hsm_key")
        if not isinstance(hsm_key, str) or not hsm_key:
            raise BrokerSessionExpired("The session's Fyers token carries no market-feed key: sign in again.")
        return HsmDialect(
            url=catalogue.endpoint(account.broker, "ws"),
            hsm_key=hsm_key,
            token_text=f"{app_id}:{token}",
            symbols=_symbols(),
        )

    @classmethod
    def order_stream(cls, account: Any, session: Mapping[str, str]) -> order_stream.OrderDialect:
        app_id = broker_credentials_get(account=account).get("app_id", "")
        return order_stream.OrderDialect(
            url=catalogue.endpoint(account.broker, "order_ws"),
            authorization=f"{app_id}:{session.get('access_token', '')}",
        )

    @classmethod
    def update_from_stream(cls, account_id: int, message: Mapping[str, Any]) -> BrokerUpdate | None:
        return order_stream.update_of(account_id, message)

    @classmethod
    def master_rows(cls, broker: str) -> Iterable[MasterRow | tuple[int, str]]:
        """Download every segment file of the master (``MASTER_FILES``) first, then read them; a file
        that cannot be downloaded raises BrokerError and nothing is read."""
        files = []
        for name in MASTER_FILES:
            client = WireClient(
                broker=FAMILY, root=catalogue.endpoint(broker, "master"), answer=_file_answer, limit_key="master"
            )
            files.append((name, client.call(Endpoint("GET", f"/{name}.csv", LIMITS["other"]))))
        return master.parse_files(files)

    # --- writes -----------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Send the order (``POST /orders/sync``) tagged with its broker tag; return Fyers' order id
        with OPEN. Raises BrokerRejected (not sent) for what Fyers cannot carry, else as
        ``families.fyers.errors`` maps Fyers' answer."""
        symbol = fyers_symbol(request.instrument_id, what=f"{request.exchange}:{request.tradingsymbol}")
        answer = self.client.place_order(order_body(request, symbol.tradingsymbol))
        order_id = answer.get("id")
        if not isinstance(order_id, str | int) or isinstance(order_id, bool) or not str(order_id):
            raise malformed("Fyers", "the order's placement")
        return PlaceResult(broker_order_id=str(order_id), status="OPEN")

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Change the order (``PATCH /orders/sync``): only what ``change`` names is sent."""
        self.client.modify_order(modify_body(_order_id(broker_order_id), change))

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """Cancel the order (``DELETE /orders/sync`` with ``{"id": ...}``)."""
        self.client.cancel_order(_order_id(broker_order_id))

    # --- reads ------------------------------------------------------------------------------------
    def order_book(self) -> list[BrokerOrder]:
        """The day's orders with their fills (the trade book, read once)."""
        fills: dict[str, list[Fill]] = defaultdict(list)
        for fill in self.trades():
            fills[fill.broker_order_id].append(fill)
        return [_order(row, fills.get(str(row["id"]), [])) for row in self._rows("orders", "orderBook")]

    def order_by_tag(self, tag: str) -> BrokerOrder | None:
        for row in self._rows("orders", "orderBook"):
            if tag_of(row.get("orderTag")) == tag:
                order_id = str(row["id"])
                return _order(row, [fill for fill in self.trades() if fill.broker_order_id == order_id])
        return None

    def trades(self) -> list[Fill]:
        rows = self._rows("trades", "tradeBook")
        return self.client.parse("the trade book", lambda data: [_fill(row) for row in data], rows)

    def positions(self) -> list[BrokerPosition]:
        rows, find = self._rows("positions", "netPositions"), instrument_finder()

        def parse(data: list[dict[str, Any]]) -> list[BrokerPosition]:
            positions = []
            for row in data:
                quantity = _int(row["netQty"])
                instrument_id = find(row.get("fyToken"), row.get("symbol"))
                if quantity and instrument_id is not None:
                    positions.append(
                        BrokerPosition(
                            instrument_id=instrument_id,
                            product=PRODUCT_NAMES.get(str(row.get("productType")), str(row.get("productType"))),
                            net_quantity=quantity,
                            average_price=_decimal(row.get("netAvg", row.get("avgPrice", 0))),
                        )
                    )
            return positions

        return self.client.parse("the positions", parse, rows)

    def holdings(self) -> list[BrokerHolding]:
        rows, find = self._rows("holdings", "holdings"), instrument_finder()

        def parse(data: list[dict[str, Any]]) -> list[BrokerHolding]:
            holdings = []
            for row in data:
                quantity = _int(row["quantity"])
                instrument_id = find(row.get("fyToken"), row.get("symbol"))
                if quantity and instrument_id is not None:
                    holdings.append(
                        BrokerHolding(
                            instrument_id=instrument_id, quantity=quantity, average_price=_decimal(row["costPrice"])
                        )
                    )
            return holdings

        return self.client.parse("the holdings", parse, rows)

    def funds(self) -> BrokerFunds:
        """The equity segment's total balance, utilised amount and available balance (Fyers'
        ``fund_limit`` rows 1, 2 and 10)."""
        answer = self.client.funds()

        def parse(data: dict[str, Any]) -> BrokerFunds:
            rows = {_int(row["id"]): row for row in data["fund_limit"]}
            return BrokerFunds(
                cash=_decimal(rows[1]["equityAmount"]),
                margin_used=_decimal(rows[2]["equityAmount"]),
                available=_decimal(rows[10]["equityAmount"]),
                extra={"commodity_available": _decimal(rows[10].get("commodityAmount", 0))},
            )

        return self.client.parse("the funds", parse, answer)

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        mapped = instrument_map(FAMILY).by_instrument
        keys = {s.tradingsymbol: pk for pk in instrument_ids if (s := mapped.get(pk)) is not None}
        symbols, quotes, now = sorted(keys), {}, timezone.now()
        for start in range(0, len(symbols), QUOTES_PER_CALL):
            answer = self.client.quotes(symbols[start : start + QUOTES_PER_CALL])
            for name, values in self.client.parse("the quotes", _quote_rows, answer):
                pk = keys.get(name)
                if pk is None or values["lp"] <= 0:
                    continue
                quotes[pk] = Quote(
                    instrument_id=pk,
                    ltp=values["lp"],
                    ts=values["ts"] or now,
                    bid=values["bid"],
                    ask=values["ask"],
                    volume=values["volume"],
                    open=values["open"],
                    high=values["high"],
                    low=values["low"],
                    close=values["close"],
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

    def _rows(self, call: str, key: str) -> list[dict[str, Any]]:
        answer = getattr(self.client, call)()

        def parse(data: dict[str, Any]) -> list[dict[str, Any]]:
            rows = data.get(key) or []
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                raise TypeError(f"{key} is not a list of objects")
            if key == "orderBook" and not all("id" in row for row in rows):
                raise KeyError("an order of the order book has no id")
            return rows

        return self.client.parse(f"the {key}", parse, answer)


# --- requests ---------------------------------------------------------------------------------------
def order_body(request: BrokerOrderRequest, ticker: str) -> dict[str, Any]:
    """The documented ``POST /orders/sync`` body for ``request`` on Fyers' symbol ``ticker``. Raises
    BrokerRejected (``broker_cannot``, not sent) for terms Fyers does not carry."""
    order_type = _choice(ORDER_TYPES, request.order_type, "order type")
    side = _choice(SIDES, request.side, "side")
    product = _choice(PRODUCTS, request.product, "product")
    if request.validity not in VALIDITIES:
        raise _cannot(f"Fyers has no validity {request.validity[:12]!r}")
    if request.variety not in FyersAdapter.capabilities.varieties:
        raise _cannot(f"Fyers has no {request.variety[:12]!r} orders")
    if not isinstance(request.quantity, int) or request.quantity < 1:
        raise _cannot("the quantity is not a positive whole number")
    limit = _price(request.price, "price") if request.order_type in PRICED else Decimal(0)
    stop = _price(request.trigger_price, "trigger price") if request.order_type in STOPPED else Decimal(0)
    return {
        "symbol": ticker,
        "qty": request.quantity,
        "type": order_type,
        "side": side,
        "productType": product,
        "limitPrice": limit,
        "stopPrice": stop,
        "validity": request.validity,
        "disclosedQty": 0,
        "offlineOrder": request.variety == "amo",
        "stopLoss": 0,
        "takeProfit": 0,
        "orderTag": request.tag,
    }


def modify_body(order_id: str, change: BrokerModifyRequest) -> dict[str, Any]:
    """The ``PATCH /orders/sync`` body: the order's id and the terms ``change`` names. A price goes
    with an order that keeps or takes a limit (LIMIT, SL); raises BrokerRejected when nothing changes."""
    body: dict[str, Any] = {"id": order_id}
    if change.order_type is not None:
        body["type"] = _choice(ORDER_TYPES, change.order_type, "order type")
    if change.quantity is not None:
        if not isinstance(change.quantity, int) or change.quantity < 1:
            raise _cannot("the quantity is not a positive whole number")
        body["qty"] = change.quantity
    if change.price is not None and change.order_type in {None, *PRICED}:
        body["limitPrice"] = _price(change.price, "price")
    if change.trigger_price is not None:
        body["stopPrice"] = _price(change.trigger_price, "trigger price")
    if len(body) == 1:
        raise _cannot("the modification changes nothing")
    return body


def _choice(table: Mapping[str, Any], value: str, what: str) -> Any:
    if value not in table:
        raise _cannot(f"Fyers has no {what} {str(value)[:12]!r}")
    return table[value]


def _price(value: Decimal | None, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise _cannot(f"the order needs a positive {what}")
    return value


def _cannot(why: str) -> BrokerRejected:
    return BrokerRejected(f"{why}: nothing was sent.", code="broker_cannot", extra={"broker": FAMILY})


def _order_id(value: str) -> str:
    if not isinstance(value, str) or not _ORDER_ID.fullmatch(value):
        raise BrokerOrderNotFound(f"Fyers has no order {str(value)[:40]!r}.", extra={"order_id": str(value)[:40]})
    return value


def fyers_symbol(instrument_id: int, *, what: str) -> BrokerSymbol:
    """How Fyers names our instrument (its fytoken and symbol ticker), from the Fyers mapping. Raises
    BrokerRejected ``broker_instrument_not_mapped`` (nothing sent) when Fyers' master does not list it."""
    return broker_symbol_required(
        broker=FAMILY, instrument_id=instrument_id, what=what, master="Fyers' symbol master (no Fyers mapping)"
    )


def instrument_finder() -> Callable[[Any, Any], int | None]:
    """Our instrument id for a row of Fyers': by its fytoken, else by its symbol ticker."""
    mapping = instrument_map(FAMILY)
    by_ticker: dict[str, int] = {}

    def find(fytoken: Any, ticker: Any) -> int | None:
        if fytoken is not None and (found := mapping.by_token.get(str(fytoken))) is not None:
            return found
        if not by_ticker:
            by_ticker.update({s.tradingsymbol: pk for pk, s in mapping.by_instrument.items()})
        return by_ticker.get(str(ticker)) if ticker is not None else None

    return find


def _symbols() -> dict[str, str]:
    """fytoken -> symbol ticker for every instrument of the Fyers mapping (the market feed's topics)."""
    return {s.token: s.tradingsymbol for s in instrument_map(FAMILY).by_instrument.values()}


# --- answers ---------------------------------------------------------------------------------------
def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError("a Fyers amount is a number")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError("a Fyers amount is finite")
    return result


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("a Fyers count is a whole number")
    return value


def _time(value: Any) -> datetime | None:
    """Fyers' "08-Jun-2023 10:11:55" (IST) or epoch seconds as an aware UTC datetime; None if unreadable."""
    if isinstance(value, str):
        try:
            return datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=order_stream.IST).astimezone(UTC)
        except ValueError:
            return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**32:
        return datetime.fromtimestamp(value, UTC)
    return None


def _fill(row: dict[str, Any]) -> Fill:
    exchange = SEGMENTS.get((row.get("exchange"), row.get("segment")), "")  # type: ignore[arg-type]
    return Fill(
        trade_id=str(row["tradeNumber"]),
        quantity=_int(row["tradedQty"]),
        price=_decimal(row["tradePrice"]),
        ts=_time(row.get("orderDateTime")) or timezone.now(),
        broker_order_id=str(row["orderNumber"]),
        exchange=exchange,
    )


def _order(row: dict[str, Any], fills: list[Fill]) -> BrokerOrder:
    try:
        order_type = ORDER_TYPE_NAMES.get(_int(row.get("type", 0)))
        filled = _int(row.get("filledQty", 0))
        traded = _decimal(row.get("tradedPrice", 0))
        return BrokerOrder(
            tag=tag_of(row.get("orderTag")),
            broker_order_id=str(row["id"]),
            status=status_of(row.get("status"), current="OPEN"),
            quantity=_int(row["qty"]),
            filled_quantity=filled,
            average_price=traded if filled and traded > 0 else None,
            fills=tuple(fills),
            message=str(row.get("message") or "")[:500],
            order_type=order_type,
            price=_decimal(row.get("limitPrice", 0)) if order_type in PRICED else None,
            trigger_price=_decimal(row.get("stopPrice", 0)) if order_type in STOPPED else None,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise malformed("Fyers", "the order book") from exc


def _quote_rows(answer: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for item in answer["d"]:
        if item.get("s") != "ok":
            continue  # a symbol Fyers does not quote
        v = item["v"]

        def optional(name: str, v: dict[str, Any] = v) -> Decimal | None:
            return _decimal(v[name]) if v.get(name) not in (None, 0) else None

        rows.append(
            (
                str(item["n"]),
                {
                    "lp": _decimal(v["lp"]),
                    "bid": optional("bid"),
                    "ask": optional("ask"),
                    "open": optional("open_price"),
                    "high": optional("high_price"),
                    "low": optional("low_price"),
                    "close": optional("prev_close_price"),
                    "volume": _int(v.get("volume", 0)),
                    "ts": _time(v.get("tt")),
                },
            )
        )
    return rows


def _file_answer(status: int, content_type: str, body: bytes) -> bytes:
    if status != 200:
        raise BrokerUnavailable(f"Fyers' symbol master answered HTTP {status}", extra={"http_status": status})
    return body


# --- the session's token -----------------------------------------------------------------------------
def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of Fyers' access token (a JWT), read without checking its signature (Fyers checks
    it; we only read what Fyers put there: ``exp``, ``hsm_key``, ``fy_id``); {} for one we cannot read."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _expiry(claims: Mapping[str, Any]) -> datetime:
    """When the token ends: its ``exp``, when it is a plausible moment within two days; else the next
    06:00 IST."""
    now = timezone.now()
    exp = claims.get("exp")
    if isinstance(exp, int) and not isinstance(exp, bool):
        try:
            moment = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            moment = None
        if moment is not None and now < moment <= now + timedelta(days=2):
            return moment
    return next_cutoff(now, "06:00")


class _SessionEnding:
    """The account's client: a session error from Fyers (the token expired or was revoked) also ends
    the account's session here, so pages show it lapsed and orders are refused before sending."""

    def __init__(self, client: FyersClient, account_id: int) -> None:
        self._client, self._account_id = client, account_id

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not callable(value) or name == "parse":
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except BrokerSessionExpired as error:
                session_end(account_id=self._account_id, reason=f"Fyers: {error.message}"[:200])
                raise

        return call
