"""The backtest engine: 1-minute bars replayed through the same ``StrategyRun`` that paper and live run,
its intents filled by the paper exchange's matching rules (``brokers.matching``) applied to bars.

For each minute, oldest first, and each instrument's bar of that minute:

1. orders waiting for this instrument are matched against the bar: a MARKET order waiting for the
   next open fills at the bar's open (plus slippage, within the protected limit); a LIMIT order when
   the bar crosses its price; an SL or SL-M order when the bar's range touches its trigger (then as a
   LIMIT or a MARKET at the trigger, or at the open if the bar opened beyond it). Each fill is handed
   to the strategy (``on_fill``) and its intents become orders in turn;
2. from the MIS square-off time (15:15 IST by default) positions in MIS are closed at the bar's open,
   their resting orders cancelled and new MIS entries refused for the rest of that day;
3. the bar goes to the strategy (``on_bar``; a strategy of a longer timeframe sees its bars when they
   complete); a MARKET intent fills at the next bar's open (``fill_mode="next_open"``) or at this bar's
   close (``fill_mode="close"``), other kinds wait for the bars after this one.

An intent whose quantity is not a whole number of lots is rejected (as the broker would); one above
the instrument's freeze quantity is sliced into orders of at most that quantity, each paying its own
charges (``brokers.charges``). Cash moves by each fill's value and charges; equity is cash
plus open positions at the last close, marked once a minute. A strategy that raises ends the run: the
result carries the traceback and everything up to that event.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from brokers.charges import Charges, ChargeSchedule, order_charges, segment_of
from brokers.matching import bar_limit_fill, bar_market_fill, bar_trigger_price, slices
from marketdata.hours import IST
from orders.positions import PositionFigures, apply_fill
from strategies.contract import Bar, Fill, Intent, OptionRow, Side
from strategies.engine import NOTHING, StrategyCrashed, StrategyRun

FillMode = Literal["next_open", "close"]
ZERO = Decimal(0)
_BAR_ORDER = attrgetter("ts", "instrument_id")  # by minute, then instrument


class BacktestSettings(BaseModel):
    """How the simulated exchange behaves; every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill_mode: FillMode = "next_open"
    slippage_bps: int = Field(default=0, ge=0, le=1000, description="Basis points a MARKET fill moves against it.")
    initial_capital: Decimal = Field(default=Decimal(1_000_000), gt=0, le=Decimal(10) ** 12, decimal_places=2)
    mis_square_off: time | None = time(15, 15)
    charges: ChargeSchedule = ChargeSchedule()


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What the simulated exchange needs of an instrument."""

    instrument_id: int
    exchange: str
    symbol: str
    instrument_type: str = "EQ"
    lot_size: int = 1
    tick_size: Decimal = Decimal("0.05")
    freeze_quantity: int | None = None
    underlying: str = ""
    strike: Decimal | None = None
    expiry: date | None = None


class SpecInstruments:
    """The ``Instruments`` a strategy looks up in a backtest: the run's own instruments."""

    def __init__(self, specs: Iterable[InstrumentSpec]) -> None:
        self.by_id = {spec.instrument_id: spec for spec in specs}
        self._by_symbol = {(spec.exchange, spec.symbol): spec.instrument_id for spec in self.by_id.values()}

    def lookup(self, exchange: str, symbol: str) -> int | None:
        return self._by_symbol.get((exchange.upper(), symbol))

    def lot_size(self, instrument_id: int) -> int:
        spec = self.by_id.get(instrument_id)
        return spec.lot_size if spec else 1

    def options(self, underlying: str, *, on: date) -> Sequence[OptionRow]:
        rows = [
            s
            for s in self.by_id.values()
            if s.underlying == underlying and s.instrument_type in ("CE", "PE") and s.expiry and s.expiry >= on
        ]
        if not rows:
            return []
        nearest = min(s.expiry for s in rows if s.expiry)
        return [
            OptionRow(s.instrument_id, s.strike or ZERO, s.instrument_type, nearest, s.lot_size)  # type: ignore[arg-type]
            for s in sorted(rows, key=lambda s: (s.strike or ZERO, s.instrument_type))
            if s.expiry == nearest
        ]


@dataclass(slots=True)
class _Order:
    id: int
    intent: Intent
    quantity: int
    placed: datetime
    wait_open: bool  # a MARKET order waiting for the next bar's open
    triggered: bool = False


@dataclass(frozen=True, slots=True)
class ExecutedFill:
    """One executed order (or slice): what it traded, at what price, and what it paid."""

    order_id: int
    ts: datetime
    instrument_id: int
    leg: str
    side: str
    quantity: int
    price: Decimal
    product: str
    charges: Charges
    reason: str


@dataclass(slots=True)
class RoundTrip:
    """One trade from flat back to flat (or to the other side) on one leg."""

    leg: str
    instrument_id: int
    direction: str  # "long" or "short"
    product: str = "MIS"
    quantity: int = 0
    entry_ts: datetime | None = None
    entry_value: Decimal = ZERO
    exit_ts: datetime | None = None
    exit_quantity: int = 0
    exit_value: Decimal = ZERO
    gross_pnl: Decimal = ZERO
    charges: Decimal = ZERO
    exit_reason: str = ""

    @property
    def entry_price(self) -> Decimal:
        return (self.entry_value / self.quantity).quantize(Decimal("0.0001")) if self.quantity else ZERO

    @property
    def exit_price(self) -> Decimal:
        return (self.exit_value / self.exit_quantity).quantize(Decimal("0.0001")) if self.exit_quantity else ZERO

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.charges

    def as_json(self) -> dict[str, Any]:
        return {
            "leg": self.leg,
            "instrument_id": self.instrument_id,
            "direction": self.direction,
            "product": self.product,
            "quantity": self.quantity,
            "entry_ts": self.entry_ts.isoformat() if self.entry_ts else None,
            "entry_price": str(self.entry_price),
            "exit_ts": self.exit_ts.isoformat() if self.exit_ts else None,
            "exit_price": str(self.exit_price),
            "gross_pnl": str(self.gross_pnl),
            "charges": str(self.charges),
            "net_pnl": str(self.net_pnl),
            "exit_reason": self.exit_reason,
        }


@dataclass(slots=True)
class BacktestResult:
    """What a run produced. ``equity`` is one ``(minute, equity)`` per minute with a bar; ``error`` is the
    strategy's traceback when it raised (the run stopped there)."""

    initial_capital: Decimal
    cash: Decimal
    equity: list[tuple[datetime, Decimal]] = field(default_factory=list)
    fills: list[ExecutedFill] = field(default_factory=list)
    trades: list[RoundTrip] = field(default_factory=list)
    open_trades: list[RoundTrip] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    bars: int = 0
    exposed_minutes: int = 0
    error: str = ""
    error_event: str = ""

    @property
    def charges(self) -> Decimal:
        return sum((f.charges.total for f in self.fills), ZERO)

    @property
    def final_equity(self) -> Decimal:
        return self.equity[-1][1] if self.equity else self.initial_capital


class Backtest:
    """One backtest of one strategy kind with its parameters over the given instruments' 1-minute bars."""

    def __init__(
        self,
        *,
        kind: str,
        params: Any,
        instruments: Iterable[InstrumentSpec],
        settings: BacktestSettings | None = None,
    ) -> None:
        self.settings = settings or BacktestSettings()
        self.symbols = SpecInstruments(instruments)
        self.run = StrategyRun(kind=kind, params=params, instruments=self.symbols)
        self.result = BacktestResult(initial_capital=self.settings.initial_capital, cash=self.settings.initial_capital)
        self._ids = itertools.count(1)
        self._pending: dict[int, list[_Order]] = {}
        self._positions: dict[tuple[int, str], int] = {}  # (instrument, product) -> net quantity, never 0
        self._legs: dict[str, PositionFigures] = {}
        self._open_trades: dict[str, RoundTrip] = {}
        self._last_close: dict[int, Decimal] = {}
        self._at_close = self.settings.fill_mode == "close"
        # The MIS square-off instant (UTC) of the IST day being replayed, and that day's bounds.
        self._day: tuple[datetime, datetime, datetime] | None = None

    # --- the replay

    def replay(self, bars: Iterable[Bar], *, progress: Any = None) -> BacktestResult:
        """Runs every 1-minute bar (sorted here by minute, then instrument) and returns the result.
        ``progress``, if given, is called with the share of bars done (0-1) every 1,000 bars or so."""
        ordered = sorted(bars, key=_BAR_ORDER)
        total = len(ordered) or 1
        reported = 0
        try:
            if ordered:
                self._handle(self.run.start(ordered[0].ts).intents, ordered[0], at_close=True)
            # One loop over the bars, with the run's fixed values in locals and each step skipped when it
            # has nothing to do (no resting orders, before the square-off, no intents): the hot path.
            known = self.symbols.by_id
            pending = self._pending
            positions = self._positions
            last_close = self._last_close
            on_bar = self.run.on_bar
            result = self.result
            equity = result.equity
            squares_off = self.settings.mis_square_off is not None
            minute: datetime | None = None
            done = 0
            for bar in ordered:
                ts = bar.ts
                if ts != minute:
                    if minute is not None:
                        # The minute's mark, as ``_mark`` makes it, inlined: this runs once a minute.
                        if positions:
                            held = ZERO
                            for (held_id, _), quantity in positions.items():
                                held += quantity * last_close.get(held_id, ZERO)
                            result.exposed_minutes += 1
                            equity.append((minute, result.cash + held))
                        else:
                            equity.append((minute, result.cash + ZERO))  # + 0 as ``_mark``'s
                        if progress is not None and done - reported >= 1000:
                            reported = done
                            progress(done / total)
                    minute = ts
                done += 1
                instrument_id = bar.instrument_id
                if instrument_id not in known:
                    continue
                result.bars += 1
                if pending.get(instrument_id):
                    self._match_pending(bar)
                if squares_off and self._after_square_off(ts):
                    self._square_off(bar)
                last_close[instrument_id] = bar.close
                step = on_bar(bar)
                if step is not NOTHING:
                    if step.log:
                        result.log.extend(step.log)
                    if step.intents:
                        self._handle(step.intents, bar, at_close=self._at_close)
            if minute is not None:
                self._mark(minute)
                if progress is not None and done - reported >= 1000:
                    progress(done / total)
        except StrategyCrashed as crash:
            self.result.error = crash.traceback
            self.result.error_event = crash.event
        self.result.open_trades = list(self._open_trades.values())
        return self.result

    def _mark(self, minute: datetime) -> None:
        result = self.result
        positions = self._positions
        if not positions:
            result.equity.append((minute, result.cash + ZERO))  # + 0 as below: the same Decimal, exponent and all
            return
        last_close = self._last_close
        held = ZERO
        for (instrument_id, _), quantity in positions.items():
            held += quantity * last_close.get(instrument_id, ZERO)
        result.exposed_minutes += 1
        result.equity.append((minute, result.cash + held))

    # --- orders

    def _handle(self, intents: Sequence[Intent], bar: Bar, *, at_close: bool) -> None:
        for intent in intents:
            spec = self.symbols.by_id.get(intent.instrument_id)
            if spec is None:
                self._reject(intent, bar.ts, "instrument_not_in_backtest")
                continue
            if intent.quantity % spec.lot_size:
                self._reject(intent, bar.ts, "quantity_not_multiple_of_lot_size")
                continue
            if intent.product == "MIS" and self._after_square_off(bar.ts) and self._increases(intent):
                self._reject(intent, bar.ts, "mis_entry_after_square_off")
                continue
            for quantity in slices(intent.quantity, spec.freeze_quantity, spec.lot_size):
                order = _Order(next(self._ids), intent, quantity, bar.ts, wait_open=intent.order_type == "MARKET")
                if intent.order_type == "MARKET" and at_close and bar.instrument_id == intent.instrument_id:
                    self._fill_market(order, spec, bar.close, bar.ts + timedelta(minutes=1))  # when it closed
                else:
                    self._pending.setdefault(intent.instrument_id, []).append(order)

    def _reject(self, intent: Intent, ts: datetime, code: str) -> None:
        self.result.rejections.append({"ts": ts.isoformat(), "leg": intent.leg, "side": intent.side, "code": code})

    def _increases(self, intent: Intent) -> bool:
        held = self._positions.get((intent.instrument_id, intent.product), 0)
        signed = intent.quantity if intent.side == "BUY" else -intent.quantity
        return abs(held + signed) > abs(held)

    def _match_pending(self, bar: Bar) -> None:
        orders = self._pending.get(bar.instrument_id)
        if not orders:
            return
        spec = self.symbols.by_id[bar.instrument_id]
        self._pending[bar.instrument_id] = []
        for order in orders:
            if not self._match(order, spec, bar):
                self._pending[bar.instrument_id].append(order)

    def _match(self, order: _Order, spec: InstrumentSpec, bar: Bar) -> bool:
        """Tries ``order`` against ``bar``; returns True if it is done (filled)."""
        intent = order.intent
        kind = intent.order_type
        if kind == "MARKET":
            self._fill_market(order, spec, bar.open, bar.ts)
            return True
        reference = bar.open
        if kind in ("SL", "SL-M") and not order.triggered:
            assert intent.trigger_price is not None
            touched = bar_trigger_price(
                side=intent.side, trigger=intent.trigger_price, open=bar.open, high=bar.high, low=bar.low
            )
            if touched is None:
                return False
            order.triggered = True
            if kind == "SL-M":
                self._fill_market(order, spec, touched, bar.ts)
                return True
            reference = touched
        assert intent.price is not None
        # A LIMIT (or a triggered SL) meets the bar from ``reference`` on: the open, or the trigger price.
        fills = bar_limit_fill(
            side=intent.side,
            quantity=order.quantity,
            limit=intent.price,
            open=reference,
            high=bar.high,
            low=bar.low,
            tick=spec.tick_size,
        )
        if not fills.fills:
            return False
        for quantity, price in fills.fills:
            self._execute(order, spec, quantity, price, bar.ts)
        return True

    def _fill_market(self, order: _Order, spec: InstrumentSpec, price: Decimal, ts: datetime) -> None:
        fills = bar_market_fill(
            side=order.intent.side,
            quantity=order.quantity,
            price=price,
            instrument_type=spec.instrument_type,
            tick=spec.tick_size,
            slippage_bps=self.settings.slippage_bps,
        )
        for quantity, fill_price in fills.fills:
            self._execute(order, spec, quantity, fill_price, ts)

    def _execute(self, order: _Order, spec: InstrumentSpec, quantity: int, price: Decimal, ts: datetime) -> None:
        intent = order.intent
        turnover = quantity * price
        segment = segment_of(instrument_type=spec.instrument_type, product=intent.product)
        charges = order_charges(schedule=self.settings.charges, segment=segment, side=intent.side, turnover=turnover)
        executed = ExecutedFill(
            order.id, ts, spec.instrument_id, intent.leg, intent.side, quantity, price, intent.product, charges,
            intent.reason,
        )  # fmt: skip
        self.result.fills.append(executed)
        self.result.cash += (-turnover if intent.side == "BUY" else turnover) - charges.total
        key = (spec.instrument_id, intent.product)
        net = self._positions.get(key, 0) + (quantity if intent.side == "BUY" else -quantity)
        if net:
            self._positions[key] = net
        else:
            del self._positions[key]  # only held positions are kept, so a flat minute's mark is the cash
        self._book_trade(executed)
        step = self.run.on_fill(
            Fill(
                leg=intent.leg,
                instrument_id=spec.instrument_id,
                side=intent.side,
                quantity=quantity,
                price=price,
                ts=ts,
            )
        )
        self.result.log.extend(step.log)
        if step.intents:
            # Orders a fill asks for meet the market from the next bar of their instrument.
            bar = Bar(spec.instrument_id, ts, price, price, price, price, 0)
            self._handle(step.intents, bar, at_close=False)

    # --- MIS square-off

    def _after_square_off(self, ts: datetime) -> bool:
        limit = self.settings.mis_square_off
        if limit is None:
            return False
        day = self._day
        if day is None or not day[0] <= ts < day[1]:
            # A new IST day: its bounds and its square-off instant, computed once a day rather than
            # converting every bar's time to IST (IST keeps no daylight saving; ZoneInfo handles it anyway).
            local = ts.astimezone(IST).date()
            start = datetime.combine(local, time(0), IST).astimezone(ts.tzinfo)
            end = datetime.combine(local + timedelta(days=1), time(0), IST).astimezone(ts.tzinfo)
            day = self._day = (start, end, datetime.combine(local, limit, IST).astimezone(ts.tzinfo))
        return ts >= day[2]

    def _square_off(self, bar: Bar) -> None:
        if not self._after_square_off(bar.ts):
            return
        spec = self.symbols.by_id[bar.instrument_id]
        pending = self._pending.get(bar.instrument_id, [])
        self._pending[bar.instrument_id] = [o for o in pending if o.intent.product != "MIS"]
        for leg, trade in list(self._open_trades.items()):
            if trade.instrument_id != bar.instrument_id or trade.product != "MIS":
                continue
            net = self._legs[leg].net_quantity
            quantity = abs(net)
            side: Side = "SELL" if net > 0 else "BUY"
            intent = Intent(
                leg=leg, instrument_id=bar.instrument_id, side=side, quantity=quantity, reason="MIS square-off"
            )
            for part in slices(quantity, spec.freeze_quantity, spec.lot_size):
                self._fill_market(_Order(next(self._ids), intent, part, bar.ts, wait_open=True), spec, bar.open, bar.ts)

    # --- round trips

    def _book_trade(self, fill: ExecutedFill) -> None:
        figures = self._legs.get(fill.leg, PositionFigures())
        before = figures.net_quantity
        after_figures, realised = apply_fill(figures, side=fill.side, quantity=fill.quantity, price=fill.price)
        self._legs[fill.leg] = after_figures
        after = after_figures.net_quantity
        trade = self._open_trades.get(fill.leg)
        closing = min(fill.quantity, abs(before)) if before and (before > 0) != (fill.side == "BUY") else 0
        opening = fill.quantity - closing
        share = fill.charges.total
        if closing and trade is not None:
            part = share * closing / fill.quantity
            trade.exit_quantity += closing
            trade.exit_value += closing * fill.price
            trade.gross_pnl += realised
            trade.charges += part
            trade.exit_ts = fill.ts
            trade.exit_reason = fill.reason
            share -= part
            if after == 0 or (after > 0) != (before > 0):
                self.result.trades.append(trade)
                del self._open_trades[fill.leg]
        if opening:
            trade = self._open_trades.get(fill.leg)
            if trade is None:
                direction = "long" if fill.side == "BUY" else "short"
                trade = RoundTrip(
                    leg=fill.leg,
                    instrument_id=fill.instrument_id,
                    direction=direction,
                    product=fill.product,
                    entry_ts=fill.ts,
                )
                self._open_trades[fill.leg] = trade
            trade.quantity += opening
            trade.entry_value += opening * fill.price
            trade.charges += share


def run_backtest(
    *,
    kind: str,
    params: Any,
    instruments: Iterable[InstrumentSpec],
    bars: Iterable[Bar],
    settings: BacktestSettings | None = None,
    progress: Any = None,
) -> BacktestResult:
    """Returns the result of replaying ``bars`` (1-minute) through the strategy ``kind`` with ``params``.
    Raises StrategyUnknown or StrategyInvalid (422) for an unknown kind or bad parameters."""
    return Backtest(kind=kind, params=params, instruments=instruments, settings=settings).replay(
        bars, progress=progress
    )
