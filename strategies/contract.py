"""The strategy contract: what a strategy receives and what it may emit, the same in backtest, paper and live.

A strategy is a class registered by name (``strategies.registry``). It receives events (the bars of its
timeframe, ticks, its own fills, timers) through a ``Context`` and answers by emitting ``Intent``s on
it. It never calls a broker or the database: the engine that runs it (``strategies.engine``) hands its
intents to whoever runs it (the order services for paper and live, a simulated exchange for a
backtest), and hands back the fills.

Quantities in intents are the strategy's base quantity; a deployment multiplies them per account.
A *leg* names one position the strategy holds (``"long"``, ``"ce"``, ``"pe"``...): the engine keeps
each leg's net quantity from the fills, so ``ctx.position(leg)`` is the deployment's own, apart from
whatever else the account holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

Side = Literal["BUY", "SELL"]
OrderKind = Literal["MARKET", "LIMIT", "SL", "SL-M"]
Drive = Literal["bar", "tick"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed bar of ``timeframe`` minutes; ``ts`` is the minute it opened (UTC)."""

    instrument_id: int
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    timeframe: int = 1


@dataclass(frozen=True, slots=True)
class Tick:
    instrument_id: int
    ts: datetime
    ltp: Decimal
    volume: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    """A fill of one of the strategy's own orders, in base quantity (the multiplier divided out)."""

    leg: str
    instrument_id: int
    side: Side
    quantity: int
    price: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class Timer:
    name: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Intent:
    """An order the strategy wants, before any multiplier, risk check or broker.

    ``key`` is filled by the engine: (the event's time, the leg, its sequence within the event), so the
    same event evaluated twice yields the same keys and a re-run places nothing twice.
    """

    leg: str
    instrument_id: int
    side: Side
    quantity: int
    order_type: OrderKind = "MARKET"
    product: str = "MIS"
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    reason: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class OptionRow:
    instrument_id: int
    strike: Decimal
    option_type: Literal["CE", "PE"]
    expiry: date
    lot_size: int


class Instruments(Protocol):
    """What a strategy may look up about instruments (the symbol master, read-only)."""

    def lookup(self, exchange: str, symbol: str) -> int | None:
        """The instrument id of ``symbol`` on ``exchange``, or None."""

    def lot_size(self, instrument_id: int) -> int: ...

    def options(self, underlying: str, *, on: date) -> Sequence[OptionRow]:
        """The options of ``underlying`` (e.g. ``"NIFTY"``) of the nearest expiry on or after ``on``."""


class Params(BaseModel):
    """Base of every strategy's parameters: validated, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Context:
    """A strategy's view of the world during one event. The engine builds one per event, or hands on the
    last event's when that event asked for nothing (with its own ``now`` and a fresh copy of ``state``);
    ``positions`` and ``legs`` are read-only views.

    ``state`` is the strategy's own JSON-serialisable memory, persisted between runs.
    """

    params: Any
    state: dict[str, Any]
    now: datetime
    instruments: Instruments
    positions: Mapping[str, int] = field(default_factory=dict)  # leg -> net base quantity
    legs: Mapping[str, int] = field(default_factory=dict)  # leg -> instrument id of its position
    intents: list[Intent] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def position(self, leg: str) -> int:
        return self.positions.get(leg, 0)

    def submit(self, intent: Intent) -> None:
        self.intents.append(intent)

    def buy(self, leg: str, instrument_id: int, quantity: int, **kwargs) -> None:
        self.submit(Intent(leg=leg, instrument_id=instrument_id, side="BUY", quantity=quantity, **kwargs))

    def sell(self, leg: str, instrument_id: int, quantity: int, **kwargs) -> None:
        self.submit(Intent(leg=leg, instrument_id=instrument_id, side="SELL", quantity=quantity, **kwargs))

    def close(self, leg: str, *, reason: str = "", product: str = "MIS") -> None:
        """Flatten ``leg`` with a market order (nothing if it is flat)."""
        quantity = self.position(leg)
        if quantity:
            side: Side = "SELL" if quantity > 0 else "BUY"
            self.submit(
                Intent(
                    leg=leg,
                    instrument_id=self.legs[leg],
                    side=side,
                    quantity=abs(quantity),
                    product=product,
                    reason=reason,
                )
            )

    def close_all(self, *, reason: str = "") -> None:
        for leg in sorted(self.positions):
            self.close(leg, reason=reason)

    def note(self, message: str) -> None:
        """A line for the deployment's log."""
        self.log.append(message)


class Strategy:
    """Base of every strategy. Subclasses set ``name``, ``Params``, ``drive`` and override handlers.

    Handlers emit intents on ``ctx``; they return nothing. Raising pauses the deployment (its
    traceback goes into the deployment's log).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    drive: ClassVar[Drive] = "bar"
    timeframe: ClassVar[int] = 1  # minutes, for bar-driven strategies

    def __init__(self, params: Params) -> None:
        self.params = params

    def instruments(self, ctx: Context) -> list[int]:
        """The instruments whose bars or ticks this strategy receives."""
        return []

    def on_start(self, ctx: Context) -> None:
        """Once, when a deployment starts (``ctx.state`` is empty)."""

    def on_bar(self, ctx: Context, bar: Bar) -> None: ...

    def on_tick(self, ctx: Context, tick: Tick) -> None: ...

    def on_fill(self, ctx: Context, fill: Fill) -> None: ...

    def on_timer(self, ctx: Context, timer: Timer) -> None: ...


class SingleInstrumentStrategy(Strategy):
    """A strategy on the one instrument its parameters name (``params.instrument``, anything with
    ``resolve(ctx) -> int``), resolved once through ``ctx.instruments``; a ``params.timeframe``, when
    the parameters have one, sets this instance's timeframe."""

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._instrument_id: int | None = None
        timeframe = getattr(params, "timeframe", None)
        if timeframe:
            self.timeframe = timeframe  # type: ignore[misc]  # the class default, per instance

    def instrument_id(self, ctx: Context) -> int:
        if self._instrument_id is None:
            self._instrument_id = self.params.instrument.resolve(ctx)  # type: ignore[attr-defined]
        return self._instrument_id

    def instruments(self, ctx: Context) -> list[int]:
        return [self.instrument_id(ctx)]
