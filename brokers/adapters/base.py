"""The BrokerAdapter interface every broker family implements, and the values that cross it.

Errors say whether the request may have reached the broker: ``BrokerNotSent`` and its kinds
(rejected, session expired, rate-limited, unreachable) mean it certainly did nothing there;
``BrokerUnavailable`` means it may have (a timeout after sending), and only that leaves an order
UNKNOWN for reconciliation.

Adapters never import the order management system: they take plain requests, return results, raise
the typed errors below, and report every later status change or fill as a ``BrokerUpdate`` through
``brokers.adapters.updates.emit``; ``orders.services.apply_broker_update`` applies them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from core.errors import ApplicationError


class BrokerError(ApplicationError):
    """Base of every error an adapter raises."""

    code = "broker_error"
    status = 502


class BrokerNotSent(BrokerError):
    """The request never reached the broker, or the broker refused it: nothing happened there, so
    the order system may settle the request at once (an order is REJECTED, a change reverted)."""

    code = "broker_not_sent"
    status = 503


class BrokerRejected(BrokerNotSent):
    """The broker (or exchange) refused the request; nothing is resting there."""

    code = "broker_rejected"
    status = 422


class BrokerInsufficientMargin(BrokerRejected):
    """The broker refused the order for want of margin in the account at the broker."""

    code = "broker_insufficient_margin"


class BrokerMarketClosed(BrokerRejected):
    """The broker refused the order because the market (or the segment's session) is closed."""

    code = "broker_market_closed"


class BrokerSegmentNotEnabled(BrokerRejected):
    """The account is not enabled at the broker for the order's segment (F&O, currency, commodity)."""

    code = "broker_segment_not_enabled"


class BrokerOrderNotFound(BrokerRejected):
    """The broker has no order by that id (a modify or cancel of an order it never had)."""

    code = "broker_order_not_found"
    status = 404


class BrokerSessionExpired(BrokerNotSent):
    """The account has no live session at its broker (never signed in, past the broker's daily
    cut-off, or the broker refused the token): the request was not sent; sign in again."""

    code = "broker_session_expired"
    status = 409  # the account's state, not the caller's credentials (401 is for the terminal's own sign-in)


class BrokerRateLimited(BrokerNotSent):
    """The request would exceed the broker's rate limit (or the broker answered 429): not sent."""

    code = "broker_rate_limited"
    status = 429


class BrokerUnreachable(BrokerNotSent):
    """The connection to the broker could not be made (refused, DNS, TLS before sending): not sent."""

    code = "broker_unreachable"
    status = 503


class BrokerUnavailable(BrokerError):
    """Maybe sent: the request left for the broker and no usable answer came back (a timeout, a reset
    connection, a malformed or truncated answer, a 5xx after sending). The outcome is unknown: an
    order becomes UNKNOWN and is reconciled against the broker's order book by its tag."""

    code = "broker_unavailable"
    status = 503


@dataclass(frozen=True, slots=True)
class BrokerOrderRequest:
    """One order as sent to a broker. ``tag`` is the order's broker-safe tag (``Order.broker_tag``: at
    most 20 letters and digits, unique per account): the broker's idempotency key where it has one,
    and what its order book and updates name the order by, so reconciliation can find it."""

    tag: str
    instrument_id: int
    exchange: str
    tradingsymbol: str
    side: str  # BUY / SELL
    quantity: int
    order_type: str  # MARKET / LIMIT / SL / SL-M
    product: str  # CNC / MIS / NRML
    validity: str  # DAY / IOC
    instrument_type: str  # EQ / FUT / CE / PE, from the symbol master (for simulated brokers' pricing)
    tick_size: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    algo_id: str = ""
    variety: str = "regular"  # one of the family's ``capabilities.varieties``
    iceberg_legs: int | None = None  # variety "iceberg": the number of legs and each leg's quantity
    iceberg_quantity: int | None = None


@dataclass(frozen=True, slots=True)
class MarginLeg:
    """One order whose margin a broker is asked for before it is placed (``order_margins``)."""

    instrument_id: int
    exchange: str
    tradingsymbol: str
    side: str  # BUY / SELL
    quantity: int
    order_type: str  # MARKET / LIMIT / SL / SL-M
    product: str  # CNC / MIS / NRML
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    variety: str = "regular"


@dataclass(frozen=True, slots=True)
class BrokerModifyRequest:
    quantity: int | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    order_type: str | None = None


@dataclass(frozen=True, slots=True)
class PlaceResult:
    broker_order_id: str
    status: str  # the broker's status right after acceptance, in our vocabulary (OPEN, TRIGGER_PENDING, ...)


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade of one order. ``trade_id`` is the exchange's trade id, unique only within its
    ``exchange`` (NSE, BSE and NFO reuse numbers), so a trade is identified by (account, exchange,
    trade id)."""

    trade_id: str
    quantity: int
    price: Decimal
    ts: datetime
    broker_order_id: str = ""
    exchange: str = ""


@dataclass(frozen=True, slots=True)
class BrokerUpdate:
    """A status change and/or one fill of one order, as the broker reported it.

    ``tag`` names our order (its ``broker_tag``); ``status`` uses the OMS vocabulary (OPEN,
    TRIGGER_PENDING, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED); a fill carries its own trade id,
    so applying the same update twice is harmless.
    """

    account_id: int
    tag: str
    broker_order_id: str
    status: str
    ts: datetime
    fill: Fill | None = None
    message: str = ""
    # The order's filled quantity as the broker reports it, for a broker whose updates carry no trades
    # (Kite's postbacks): more than the trades recorded sends the order to reconciliation for them.
    filled_quantity: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """One row of the broker's order book. ``order_type``, ``price`` and ``trigger_price`` are the terms
    the broker holds now (after any modification it applied); None where the broker does not say."""

    tag: str
    broker_order_id: str
    status: str
    quantity: int
    filled_quantity: int
    average_price: Decimal | None
    fills: tuple[Fill, ...] = field(default_factory=tuple)
    message: str = ""
    order_type: str | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """The broker's net position in one instrument and product."""

    instrument_id: int
    product: str
    net_quantity: int
    average_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BrokerHolding:
    """A delivery holding at the broker: ``quantity`` shares at ``average_price``; ``t1_quantity``, shares
    bought and not yet settled into the demat account (T+1), as the broker reports them. A broker that
    reports prices gives its ``last_price`` and the previous session's ``close_price`` (pages value
    holdings at the quote store's prices first)."""

    instrument_id: int
    quantity: int
    average_price: Decimal
    t1_quantity: int = 0
    last_price: Decimal | None = None
    close_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BrokerFunds:
    cash: Decimal
    margin_used: Decimal
    available: Decimal
    extra: dict[str, Any] = field(default_factory=dict)


# --- good-till-triggered orders (GTT) ---------------------------------------------------------------
GTT_SINGLE, GTT_OCO = "single", "oco"  # one trigger; two (a stop-loss and a target), one cancels the other
# A GTT's status in our vocabulary: ACTIVE until its trigger fires (TRIGGERED) or it ends otherwise.
GTT_STATUSES = frozenset({"ACTIVE", "TRIGGERED", "DISABLED", "EXPIRED", "CANCELLED", "REJECTED", "DELETED"})


@dataclass(frozen=True, slots=True)
class GttLeg:
    """One order a GTT places when the price reaches ``trigger_price``: a ``side`` (BUY / SELL) order
    for ``quantity`` at ``price`` (a LIMIT order), in ``product``."""

    trigger_price: Decimal
    side: str
    quantity: int
    price: Decimal
    product: str
    order_type: str = "LIMIT"


@dataclass(frozen=True, slots=True)
class GttOrder:
    """A GTT to place or modify on one of our instruments. ``kind`` GTT_SINGLE has one leg; GTT_OCO
    has two, the stop-loss first and the target second. ``last_price`` is the price the triggers were
    set against (a broker such as Kite needs it to know which way each trigger lies); None lets the
    adapter read it from the quote store."""

    instrument_id: int
    kind: str
    legs: tuple[GttLeg, ...]
    last_price: Decimal | None = None

    def __post_init__(self) -> None:
        expected = {GTT_SINGLE: 1, GTT_OCO: 2}.get(self.kind)
        if expected is None or len(self.legs) != expected:
            raise ValueError(f"a GTT is {GTT_SINGLE!r} with one leg or {GTT_OCO!r} with two")


@dataclass(frozen=True, slots=True)
class Gtt:
    """One GTT in the broker's GTT book. ``trigger_id`` is the broker's id for it; ``instrument_id``
    is ours (None for an instrument our symbol master does not hold); ``status`` is one of
    ``GTT_STATUSES``; the legs are in the order of ``GttOrder.legs``."""

    trigger_id: str
    kind: str
    status: str
    instrument_id: int | None
    exchange: str
    tradingsymbol: str
    legs: tuple[GttLeg, ...]
    last_price: Decimal | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None


def no_gtt(adapter: object) -> BrokerRejected:
    """The refusal of a GTT act by a broker family without GTT (``capabilities.gtt`` False)."""
    return BrokerRejected(
        "This broker has no GTT (good-till-triggered) orders: nothing was sent.",
        code="broker_cannot_gtt",
        extra={"broker": getattr(adapter, "code", "")},
    )


ALL_EXCHANGES = frozenset({"NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "BCD"})


# --- historical candles ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BrokerCandle:
    """One bar of the broker's history: ``ts`` the moment the bar opens (aware, UTC), prices as the
    broker gave them, ``volume`` traded within the bar, ``oi`` the open interest at its close (0 when
    the broker gives none)."""

    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int = 0


def no_history(adapter: object, interval: str) -> BrokerRejected:
    """The refusal of a history read for an interval the family does not serve (``capabilities.history``)."""
    return BrokerRejected(
        f"This broker serves no {interval!r} candle history: nothing was sent.",
        code="broker_no_history",
        extra={"broker": getattr(adapter, "code", ""), "interval": interval},
    )


@dataclass(frozen=True, slots=True)
class Login:
    """How an account of a broker family signs in each day.

    ``kind``: "redirect" (the broker's login page, then a request token exchanged for an access
    token: Kite Connect), "totp" (client code, password and a TOTP secret), "api_key" (a long-lived
    key, no daily step). ``credentials``: the secrets an admin stores for the account (sealed, see
    brokers.crypto). ``expires_at_ist``: the time of day (IST) at which the broker ends every session.
    """

    kind: str
    credentials: tuple[str, ...] = ()
    expires_at_ist: str | None = None


@dataclass(frozen=True, slots=True)
class SignIn:
    """A completed sign-in: the session's secrets (sealed by the caller), when the broker ends it,
    and the broker's name for the user (for the audit trail)."""

    secrets: dict[str, str] = field(repr=False)
    expires_at: datetime
    broker_user: str = ""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a broker family can do, declared by its adapter class; the order system refuses, before
    sending, what the family cannot do."""

    exchanges: frozenset[str] = ALL_EXCHANGES
    order_types: frozenset[str] = frozenset({"MARKET", "LIMIT", "SL", "SL-M"})
    products: frozenset[str] = frozenset({"CNC", "MIS", "NRML"})
    validities: frozenset[str] = frozenset({"DAY", "IOC"})
    varieties: frozenset[str] = frozenset({"regular"})  # regular, amo, co, iceberg
    gtt: bool = False  # good-till-triggered orders (single and two-leg)
    # An order-margins API (``order_margins``): the margin orders would block, asked before placing.
    # Without one the order system computes it by the ledger's rules (``margin_rate``).
    margins: bool = False
    market_protection: bool = False  # the broker takes a market-protection percentage with a market order
    max_modifications: int | None = None  # per order, where the broker caps it
    tag_length: int = 20  # the longest order tag the broker keeps
    # Its book lives in this database (the paper exchange): it makes no network calls, and it can
    # place inside the transaction that records the order (``place_order_in_transaction``), which
    # then applies the broker's answer itself. Honoured in one place: ``orders.services.placement``.
    places_in_transaction: bool = False
    # Historical candles: (interval, the most days one request may span) per interval the broker serves;
    # empty for a family without history (the paper exchange).
    history: tuple[tuple[str, int], ...] = ()

    def history_days(self, interval: str) -> int | None:
        """The most days one history request of ``interval`` may span, or None if it is not served."""
        return dict(self.history).get(interval)


class BrokerAdapter(ABC):
    """One broker account's way to its broker: what the OMS needs from a broker, bound to the account
    (and its session, for a broker with a daily login). The registry makes one per account
    (``registry.adapter_for(account)``) with ``for_account``; the class declares the family's
    ``capabilities`` and ``login``.

    Every method may raise BrokerUnavailable (maybe sent) and BrokerNotSent's kinds (session
    expired, rate-limited, unreachable); write methods may raise BrokerRejected."""

    code: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    login: ClassVar[Login | None] = None  # None: no login (the paper exchange)

    def __init__(self, *, account_id: int) -> None:
        self.account_id = account_id

    signed_in: bool = True  # False for an account of a family with a login and no live session

    @classmethod
    def for_account(cls, account: Any, session: dict[str, str] | None = None) -> BrokerAdapter:
        """Return the adapter of ``account`` (a ``brokers.BrokerAccount``). For a family with a
        ``login``, ``session`` holds the live session's secrets (the access token...); the registry
        does not call this without one. A family reads the account's credentials here."""
        return cls(account_id=account.pk)

    @classmethod
    def login_start(cls, account: Any, *, state: str) -> str:
        """Families with a "redirect" login: return the broker's login page for ``account``, which
        sends the user back to the terminal's callback with ``state`` and the broker's parameters."""
        raise NotImplementedError(f"{cls.__name__} has no redirect login")

    @classmethod
    def login_finish(cls, account: Any, params: Mapping[str, str]) -> SignIn:
        """Families with a "redirect" login: turn the callback's ``params`` into the account's
        session. Raises BrokerError (the broker refused) or ValueError (malformed parameters)."""
        raise NotImplementedError(f"{cls.__name__} has no redirect login")

    @classmethod
    def login_direct(cls, account: Any) -> SignIn:
        """Families with a "totp" or "api_key" login: sign ``account`` in at its broker with its stored
        credentials (a TOTP computed from its stored secret: ``brokers.families.login.totp_now``).
        Raises BrokerError (the broker refused) or ValueError (credentials missing or malformed)."""
        raise NotImplementedError(f"{cls.__name__} has no direct login")

    # --- streams and the symbol master: the network families override these ----------------------
    @classmethod
    def market_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        """The family's market-data websocket for a signed-in ``account`` (a
        ``brokers.families.stream.StreamDialect``), or None for a family without one."""
        return None

    @classmethod
    def order_stream(cls, account: Any, session: Mapping[str, str]) -> Any:
        """The family's order-update websocket for ``account`` (a ``StreamDialect`` whose ``orders`` are
        the family's messages), or None for a family that reports by postback or polling only."""
        return None

    @classmethod
    def update_from_stream(cls, account_id: int, message: Mapping[str, Any]) -> BrokerUpdate | None:
        """One order-update message of the family's stream (or postback) as a ``BrokerUpdate``; None for
        one that is not about an order of ours (no tag) or changes nothing. Raises ValueError for a
        message that is not in the family's documented shape."""
        return None

    @classmethod
    def master_rows(cls, broker: str) -> Iterable[Any]:
        """Download and read broker ``broker``'s symbol master: ``brokers.families.master.MasterRow``s,
        and ``(line, why)`` for each row that could not be read. Raises BrokerError when the download fails."""
        raise NotImplementedError(f"{cls.__name__} has no symbol master to download")

    @abstractmethod
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Send a new order; return the broker's order id and initial status."""

    def place_order_in_transaction(self, request: BrokerOrderRequest) -> tuple[PlaceResult, list[BrokerUpdate]]:
        """Brokers with ``capabilities.places_in_transaction`` only: place inside the caller's
        transaction and return the result with the updates it caused (acceptance, immediate fills),
        which the caller applies instead of the update stream. Raises as ``place_order`` does; a
        BrokerUnavailable raised after the broker recorded the order (a lost answer) leaves that
        record in the caller's transaction."""
        raise NotImplementedError(f"{type(self).__name__} does not place inside the OMS's transaction")

    @abstractmethod
    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Change a resting order's quantity, price or trigger; return nothing (the update stream reports).
        ``variety`` is the order's own (as it was placed)."""

    @abstractmethod
    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """Cancel a resting order (its remainder) of ``variety`` (as it was placed); the cancellation
        arrives as a BrokerUpdate."""

    @abstractmethod
    def order_book(self) -> list[BrokerOrder]:
        """Return the day's orders at the broker, each with its tag."""

    @abstractmethod
    def trades(self) -> list[Fill]:
        """Return the day's fills."""

    @abstractmethod
    def positions(self) -> list[BrokerPosition]:
        """Return the broker's net positions."""

    @abstractmethod
    def holdings(self) -> list[BrokerHolding]:
        """Return delivery holdings."""

    @abstractmethod
    def funds(self) -> BrokerFunds:
        """Return cash, margin used and margin available."""

    @abstractmethod
    def quotes(self, instrument_ids: list[int]) -> dict[int, Any]:
        """Return the broker's last quote per instrument (``marketdata.quotes.Quote``)."""

    @abstractmethod
    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        """Return the fraction of an order's value this broker blocks as margin for the product."""

    def order_margins(self, legs: list[MarginLeg]) -> Decimal:
        """Families whose ``capabilities.margins`` is True: return the margin the broker would block
        for ``legs`` placed now, together (its order-margins API; for several legs its basket-margin
        API where it has one, which counts the legs' hedges). Raises BrokerError."""
        raise NotImplementedError(f"{type(self).__name__} has no order-margins API")

    # --- GTT: families whose ``capabilities.gtt`` is True override these -------------------------
    def gtt_list(self) -> list[Gtt]:
        """Return the account's GTT book. Raises BrokerRejected ``broker_cannot_gtt`` for a family
        without GTT."""
        raise no_gtt(self)

    def gtt_place(self, order: GttOrder) -> str:
        """Place a GTT; return the broker's trigger id. Raises BrokerRejected ``broker_cannot_gtt``
        for a family without GTT, else as ``place_order`` does."""
        raise no_gtt(self)

    def gtt_modify(self, *, trigger_id: str, order: GttOrder) -> str:
        """Replace the terms of the active GTT ``trigger_id`` with ``order``; return its trigger id.
        Raises BrokerRejected ``broker_cannot_gtt`` for a family without GTT, BrokerOrderNotFound for
        a trigger the broker does not have."""
        raise no_gtt(self)

    def gtt_delete(self, trigger_id: str) -> None:
        """Delete the GTT ``trigger_id``. Raises BrokerRejected ``broker_cannot_gtt`` for a family
        without GTT, BrokerOrderNotFound for a trigger the broker does not have."""
        raise no_gtt(self)

    # --- history: families whose ``capabilities.history`` names intervals override this -----------
    def historical_candles(
        self, *, instrument_id: int, interval: str, start: datetime, end: datetime
    ) -> list[BrokerCandle]:
        """Return the broker's bars of ``interval`` for our instrument with ``start <= ts < end``
        (aware datetimes), oldest first; the span may be at most ``capabilities.history_days(interval)``
        days. Raises BrokerRejected ``broker_no_history`` for an interval the family does not serve,
        ValueError for a span over its limit, else as any read does."""
        raise no_history(self, interval)

    def order_by_tag(self, tag: str) -> BrokerOrder | None:
        """Return the broker's order tagged ``tag``, or None if the broker never received it."""
        for order in self.order_book():
            if order.tag == tag:
                return order
        return None
