"""Webhook signal payloads: the formats charting tools send, parsed into one ``Signal``.

Three formats, each a pydantic schema (field mappings in docs/strategies.md, "Webhooks"):

- **TradingView**: the alert's message, written by the user as JSON with TradingView's placeholders
  (``{"action": "{{strategy.order.action}}", "ticker": "{{ticker}}", "contracts":
  "{{strategy.order.contracts}}", "position_size": "{{strategy.position_size}}", ...}``).
- **ChartInk**: the fixed JSON ChartInk's scan alerts post (``stocks`` and ``trigger_prices`` as
  comma-separated strings, ``triggered_at``, ``scan_name``, ``scan_url``, ``alert_name``,
  ``webhook_url``). It carries no action, quantity or secret, so those come from the URL's query
  (``?action=buy&quantity=1&secret=...``) or, for the action, from a word in capitals in the alert's or scan's name.
- **Amibroker-style**: a plain JSON object (``symbol``, ``action``, ``qty``, ``id``), as an AFL
  ``InternetPostRequest`` or any script sends it.

The format is named by ``?format=`` or guessed from the body: ``stocks`` is ChartInk, ``ticker``,
``contracts`` or ``position_size`` TradingView, anything else Amibroker-style. Parsing is pure: no
database; instruments are resolved by the signal service (``strategies.services.signals``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from core.canonical_json import canonical_dumps
from strategies.contract import Params, Strategy
from strategies.errors import WebhookPayloadInvalid
from strategies.registry import register

Source = Literal["tradingview", "chartink", "amibroker"]
Action = Literal["buy", "sell", "short", "cover", "exit", "target"]
SOURCES: tuple[Source, ...] = ("tradingview", "chartink", "amibroker")
EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")
PRODUCTS = ("MIS", "CNC", "NRML")
MAX_QUANTITY = 10_000_000  # base quantity, before a deployment's multipliers
MAX_SYMBOLS = 50  # a ChartInk alert lists every stock its scan matched

# The words each action may be sent as (TradingView's {{strategy.order.action}} gives buy or sell).
ACTION_WORDS: dict[str, Action] = {
    "buy": "buy",
    "long": "buy",
    "sell": "sell",
    "short": "short",
    "cover": "cover",
    "exit": "exit",
    "exit-all": "exit",
    "exit_all": "exit",
    "exitall": "exit",
    "close": "exit",
    "flat": "exit",
    "target": "target",
}
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9&_.\-]{0,39}$")
_SIGNAL_ID = re.compile(r"^[\x21-\x7e ]{1,100}$")  # printable ASCII, no control characters


@dataclass(frozen=True, slots=True)
class SignalOrder:
    """What a signal asks for one symbol. ``quantity`` is the base quantity (None: the whole position,
    for sell, cover and exit); ``target`` the signed position wanted (action ``target``)."""

    exchange: str
    symbol: str
    action: Action
    quantity: int | None = None
    target: int | None = None
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A parsed webhook delivery: its format, id (None when the sender gave none), product and orders."""

    source: Source
    signal_id: str | None
    product: str
    orders: tuple[SignalOrder, ...]
    exit_all: bool = False  # "exit" with no symbol: every position of the deployment


# --- field readers --------------------------------------------------------------------------------------
def _text(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value.strip()
    return value


def _upper(value: Any) -> Any:
    value = _text(value)
    return value.upper() if isinstance(value, str) else value


def _action(value: Any) -> Any:
    value = _text(value)
    if isinstance(value, str):
        action = ACTION_WORDS.get(value.lower())
        if action is None:
            raise ValueError(f"must be one of {', '.join(sorted(set(ACTION_WORDS)))}")
        return action
    return value


def _integral(value: Any, *, signed: bool) -> int | None:
    """An integer from a JSON number or a numeric string ("10", "10.0": TradingView sends its
    placeholders as text); refuses fractions, booleans, and values beyond MAX_QUANTITY."""
    value = _text(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a whole number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("must be a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError("must be a whole number")
    if abs(number) > MAX_QUANTITY:
        raise ValueError(f"must be at most {MAX_QUANTITY}")
    if not signed and number <= 0:
        raise ValueError("must be positive")
    return int(number)


def _quantity(value: Any) -> int | None:
    return _integral(value, signed=False)


def _signed(value: Any) -> int | None:
    return _integral(value, signed=True)


def _price(value: Any) -> Decimal | None:
    value = _text(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not price.is_finite() or price < 0 or price > Decimal("1e9"):
        raise ValueError("must be a number between 0 and 1e9")
    return price


def _signal_id(value: Any) -> Any:
    value = _text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and not _SIGNAL_ID.match(value):
        raise ValueError("must be 1 to 100 printable ASCII characters")
    return value


def split_symbol(raw: str, exchange: str | None) -> tuple[str, str]:
    """("NSE", "RELIANCE") from "RELIANCE" or "NSE:RELIANCE" (TradingView's {{ticker}} may carry its
    exchange prefix); the default exchange is NSE. Raises ValueError for a malformed one."""
    raw = raw.strip().upper()
    if ":" in raw:
        prefix, raw = raw.split(":", 1)
        exchange = exchange or prefix
    exchange = (exchange or "NSE").strip().upper()
    if exchange not in EXCHANGES:
        raise ValueError(f"exchange must be one of {', '.join(EXCHANGES)}")
    if not _SYMBOL.match(raw):
        raise ValueError("is not a trading symbol")
    return exchange, raw


Text = Annotated[str, BeforeValidator(_text)]
ActionField = Annotated[Action, BeforeValidator(_action)]
Quantity = Annotated[int | None, BeforeValidator(_quantity)]
Signed = Annotated[int | None, BeforeValidator(_signed)]
Price = Annotated[Decimal | None, BeforeValidator(_price)]
SignalId = Annotated[str | None, BeforeValidator(_signal_id)]
ShortText = Annotated[str, BeforeValidator(_text), Field(max_length=200)]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, str_max_length=2000)

    secret: Text | None = Field(default=None, max_length=200)
    passphrase: Text | None = Field(default=None, max_length=200)
    product: Annotated[Literal["MIS", "CNC", "NRML"], BeforeValidator(_upper)] = "MIS"


class TradingViewAlert(_Payload):
    """The JSON a TradingView alert's message holds. Unknown fields are ignored (users add their own
    notes to the message); ``position_size``, when given, is the position wanted and wins over
    ``action``."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=2000)

    action: ActionField | None = None
    ticker: Text | None = Field(default=None, max_length=60)
    symbol: Text | None = Field(default=None, max_length=60)
    exchange: Text | None = Field(default=None, max_length=8)
    quantity: Quantity = None
    contracts: Quantity = None
    position_size: Signed = None
    price: Price = None
    signal_id: SignalId = None
    id: SignalId = None

    def signal(self) -> Signal:
        raw = self.ticker or self.symbol
        action = "target" if self.position_size is not None else self.action
        if action is None:
            raise _invalid("action", "is required (or position_size)")
        if raw is None:
            if action != "exit":
                raise _invalid("ticker", "is required")
            return Signal("tradingview", self.signal_id or self.id, self.product, (), exit_all=True)
        exchange, symbol = _split(raw, self.exchange, "ticker" if self.ticker else "symbol")
        quantity = self.quantity if self.quantity is not None else self.contracts
        if action in ("buy", "short") and quantity is None:
            raise _invalid("quantity", "is required to buy or short")
        order = SignalOrder(exchange, symbol, action, quantity, self.position_size, self.price)
        return Signal("tradingview", self.signal_id or self.id, self.product, (order,))


class ChartInkAlert(_Payload):
    """The JSON ChartInk's scan alert posts; every stock it lists gets the same action and quantity."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=5000)

    stocks: Text = Field(max_length=5000)
    trigger_prices: Text = Field(default="", max_length=5000)
    triggered_at: ShortText = ""
    scan_name: ShortText = ""
    scan_url: ShortText = ""
    alert_name: ShortText = ""
    action: ActionField | None = None  # from the query (?action=), else a word in alert_name or scan_name
    quantity: Quantity = None  # from the query (?quantity=), else 1

    @field_validator("stocks")
    @classmethod
    def _some_stocks(cls, value: str) -> str:
        if not [s for s in value.split(",") if s.strip()]:
            raise ValueError("lists no stock")
        return value

    def _named_action(self) -> Action | None:
        # Only a word in capitals counts ("BUY breakouts"): a scan called "Short term breakouts" is no short.
        for text in (self.alert_name, self.scan_name):
            for word in re.findall(r"\b[A-Z][A-Z_-]*\b", text):
                if word.lower() in ACTION_WORDS and ACTION_WORDS[word.lower()] != "target":
                    return ACTION_WORDS[word.lower()]
        return None

    def signal(self) -> Signal:
        action = self.action or self._named_action()
        if action is None or action == "target":
            raise _invalid(
                "action", "add ?action=buy (sell, short, cover, exit) to the URL, or the word to the alert's name"
            )
        symbols = [s.strip() for s in self.stocks.split(",") if s.strip()]
        if len(symbols) > MAX_SYMBOLS:
            raise _invalid("stocks", f"lists more than {MAX_SYMBOLS} stocks")
        prices = [p.strip() for p in self.trigger_prices.split(",")] if self.trigger_prices else []
        orders = []
        for index, raw in enumerate(symbols):
            exchange, symbol = _split(raw, None, "stocks")
            price = None
            if index < len(prices):
                try:
                    price = _price(prices[index])
                except ValueError as error:
                    raise _invalid("trigger_prices", str(error)) from None
            quantity = None if action in ("sell", "cover", "exit") else (self.quantity or 1)
            if action in ("sell", "cover", "exit") and self.quantity is not None:
                quantity = self.quantity
            orders.append(SignalOrder(exchange, symbol, action, quantity, None, price))
        return Signal("chartink", None, self.product, tuple(orders))


class AmibrokerSignal(_Payload):
    """A plain JSON signal: ``symbol``, ``action``, ``qty`` (or ``position_size``), ``id``. Unknown
    fields are refused, so a misspelt one is named rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=2000)

    symbol: Text | None = Field(default=None, max_length=60)
    exchange: Text | None = Field(default=None, max_length=8)
    action: ActionField | None = None
    qty: Quantity = None
    position_size: Signed = None
    price: Price = None
    id: SignalId = None
    format: Text | None = None

    def signal(self) -> Signal:
        action = "target" if self.position_size is not None else self.action
        if action is None:
            raise _invalid("action", "is required (or position_size)")
        if self.symbol is None:
            if action != "exit":
                raise _invalid("symbol", "is required")
            return Signal("amibroker", self.id, self.product, (), exit_all=True)
        exchange, symbol = _split(self.symbol, self.exchange, "symbol")
        if action in ("buy", "short") and self.qty is None:
            raise _invalid("qty", "is required to buy or short")
        order = SignalOrder(exchange, symbol, action, self.qty, self.position_size, self.price)
        return Signal("amibroker", self.id, self.product, (order,))


SCHEMAS: dict[Source, type[TradingViewAlert] | type[ChartInkAlert] | type[AmibrokerSignal]] = {
    "tradingview": TradingViewAlert,
    "chartink": ChartInkAlert,
    "amibroker": AmibrokerSignal,
}
# What ChartInk's fixed body cannot carry comes from the URL's query.
QUERY_FIELDS = ("action", "quantity", "product")


def _invalid(field: str, message: str) -> WebhookPayloadInvalid:
    return WebhookPayloadInvalid(f"{field}: {message}", extra={"field": field})


def _split(raw: str, exchange: str | None, field: str) -> tuple[str, str]:
    try:
        return split_symbol(raw, exchange)
    except ValueError as error:
        raise _invalid(field if "exchange" not in str(error) else "exchange", str(error)) from None


def guess_source(body: Mapping[str, Any], named: str | None = None) -> Source:
    """The format named by ``?format=`` (or a ``format`` field), else guessed from the body's keys."""
    named = named or (body.get("format") if isinstance(body.get("format"), str) else None)
    if named:
        if named.lower() not in SOURCES:
            raise _invalid("format", f"must be one of {', '.join(SOURCES)}")
        return named.lower()  # type: ignore[return-value]  # checked against SOURCES just above
    if "stocks" in body:
        return "chartink"
    if {"ticker", "contracts", "position_size"} & body.keys() and "qty" not in body:
        return "tradingview"
    return "amibroker"


def body_secret(body: Mapping[str, Any]) -> str | None:
    """The secret a body carries (``secret`` or ``passphrase``, as TradingView users put it in the
    alert's message), read before the body is validated so a bad secret answers 403, not 422."""
    for name in ("secret", "passphrase"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def parse_signal(body: Mapping[str, Any], *, query: Mapping[str, str] | None = None) -> Signal:
    """The ``Signal`` a webhook body asks for. ``query`` supplies what ChartInk cannot send in its body
    (action, quantity, product, format). Raises WebhookPayloadInvalid (422, ``extra["field"]``)."""
    query = query or {}
    source = guess_source(body, query.get("format"))
    data = dict(body)
    if source == "chartink":
        data.update({name: query[name] for name in QUERY_FIELDS if query.get(name)})
    elif query.get("product") and "product" not in data:
        data["product"] = query["product"]
    try:
        payload = SCHEMAS[source].model_validate(data)
    except ValidationError as error:
        problem = error.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        raise WebhookPayloadInvalid(f"{field}: {problem['msg']}", extra={"field": field, "format": source}) from None
    return payload.signal()


def derived_signal_id(body: Mapping[str, Any], *, day: str, minute: str | None = None) -> str:
    """The id of a signal that carries none: a hash of its body and ``day`` (ChartInk's
    ``triggered_at`` is a time of day), and for TradingView and Amibroker the ``minute`` it arrived,
    so a redelivery within that minute is a duplicate and the same alert a minute later is not."""
    text = canonical_dumps({"body": _jsonable(body), "day": day, "minute": minute})
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:40]}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items() if k not in ("secret", "passphrase")}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    return value


class WebhookParams(Params):
    """None: what to trade comes with each signal."""


@register
class WebhookStrategy(Strategy):
    """The strategy of a deployment driven only by webhook signals (kind ``"webhook"``): it has no
    parameters and emits nothing on bars; its orders come from ``strategies.services.signals``."""

    name = "webhook"
    title = "Webhook signals (TradingView, ChartInk, Amibroker)"
    Params = WebhookParams
