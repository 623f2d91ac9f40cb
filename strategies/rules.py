"""The rule strategy (kind ``"rule"``): a strategy written as JSON instead of code.

One instrument, one position at a time (leg ``"main"``), long or short. On each closed bar of its
timeframe it updates its named indicators, then:

- when flat (and before ``no_entry_after``), enters when the ``entry`` condition holds;
- when holding, exits at ``exit_at``, on the ``stop_loss``, ``target`` or ``trailing_stop`` (each a
  percent of or points from the entry price, the trailing one from the best close since entry), or when
  the ``exit`` condition holds.

Conditions compare two operands (an indicator, a price of the bar, a number, a time of day) with
``>``, ``<``, ``>=``, ``<=``, ``crosses_above`` or ``crosses_below``, combined with ``all`` / ``any``.
Prices and stops are judged on the bar's close; every order is a market order. The JSON schema, with
examples, is in docs/strategies.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from marketdata.hours import IST
from strategies.contract import Bar, Context, Fill, SingleInstrumentStrategy
from strategies.indicators import (
    Ema,
    Indicator,
    OpeningRange,
    Rsi,
    Sma,
    SuperTrend,
    TimeOfDay,
    Vwap,
    close_time,
    minutes_of,
)
from strategies.params import (
    ClockTime,
    Distance,
    InstrumentRef,
    Model,
    Price,
    Product,
    SizedParams,
    Timeframe,
    invalid_at,
)
from strategies.registry import register

LEG = "main"
MAX_DEPTH = 6  # nesting of all/any groups
MAX_ITEMS = 20  # conditions in a group, indicators in a strategy
PENDING_BARS = 3  # bars to wait for an order's fill before deciding it will not come

IndicatorType = Literal[
    "ema", "sma", "rsi", "vwap", "supertrend", "opening_range_high", "opening_range_low", "time_of_day"
]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Operator = Literal[">", "<", ">=", "<=", "crosses_above", "crosses_below"]

_NEEDS = {
    "ema": {"period"},
    "sma": {"period"},
    "rsi": {"period"},
    "supertrend": {"period", "multiplier"},
    "opening_range_high": {"minutes"},
    "opening_range_low": {"minutes"},
    "vwap": set(),
    "time_of_day": set(),
}
_TAKES_SOURCE = {"ema", "sma", "rsi"}


class IndicatorSpec(Model):
    """``{"type": "ema", "period": 20}``; ``source`` (close, open, high, low, typical) for ema, sma and rsi;
    ``multiplier`` for supertrend; ``minutes`` for the opening range."""

    type: IndicatorType
    period: Annotated[int, Field(ge=1, le=500)] | None = None
    source: Literal["close", "open", "high", "low", "typical"] | None = None
    multiplier: Annotated[Decimal, Field(gt=0, le=20, decimal_places=2, allow_inf_nan=False)] | None = None
    minutes: Annotated[int, Field(ge=1, le=375)] | None = None

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> IndicatorSpec:
        needs = _NEEDS[self.type]
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name in ("period", "multiplier", "minutes"):
            given = getattr(self, name) is not None
            if name in needs and not given:
                problems.append(((name,), f"a {self.type} indicator needs {name}"))
            elif given and name not in needs:
                problems.append(((name,), f"a {self.type} indicator takes no {name}"))
        if self.source is not None and self.type not in _TAKES_SOURCE:
            problems.append((("source",), f"a {self.type} indicator takes no source"))
        if self.type == "rsi" and self.period == 1:
            problems.append((("period",), "an rsi needs a period of at least 2"))
        if problems:
            raise invalid_at(*problems)
        return self

    def build(self) -> Indicator:
        source = self.source or "close"
        match self.type:
            case "ema":
                return Ema(self.period or 1, source)
            case "sma":
                return Sma(self.period or 1, source)
            case "rsi":
                return Rsi(self.period or 2, source)
            case "vwap":
                return Vwap()
            case "supertrend":
                return SuperTrend(self.period or 1, self.multiplier or Decimal(3))
            case "opening_range_high":
                return OpeningRange(self.minutes or 1, "high")
            case "opening_range_low":
                return OpeningRange(self.minutes or 1, "low")
            case _:
                return TimeOfDay()

    @property
    def is_time(self) -> bool:
        return self.type == "time_of_day"


class Operand(Model):
    """Exactly one of ``{"indicator": "fast"}``, ``{"price": "close"}``, ``{"number": "100.5"}``,
    ``{"time": "14:30"}`` (a wall-clock time in IST, compared with a ``time_of_day`` indicator)."""

    indicator: Name | None = None
    price: Literal["open", "high", "low", "close"] | None = None
    number: Price | None = None
    time: ClockTime | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Operand:
        if sum(value is not None for value in (self.indicator, self.price, self.number, self.time)) != 1:
            raise ValueError("give exactly one of indicator, price, number or time")
        return self

    @property
    def constant(self) -> bool:
        return self.number is not None or self.time is not None


class Condition(Model):
    """A comparison ``{"left": ..., "op": ">", "right": ...}`` or a group ``{"all": [...]}`` /
    ``{"any": [...]}`` of conditions (groups nest)."""

    left: Operand | None = None
    op: Operator | None = None
    right: Operand | None = None
    all: Annotated[list[Condition], Field(min_length=1, max_length=MAX_ITEMS)] | None = None
    any: Annotated[list[Condition], Field(min_length=1, max_length=MAX_ITEMS)] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Condition:
        comparison = (self.left, self.op, self.right)
        groups = [self.all is not None, self.any is not None]
        if any(part is not None for part in comparison):
            if sum(groups):
                raise ValueError("a condition is either a comparison (left, op, right) or a group (all or any)")
            missing = [name for name, part in zip(("left", "op", "right"), comparison, strict=True) if part is None]
            if missing:
                raise invalid_at(((missing[0],), "a comparison needs left, op and right"))
        elif sum(groups) != 1:
            raise ValueError("a condition is either a comparison (left, op, right) or a group (all or any)")
        return self

    def walk(self, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Condition]]:
        """Every comparison with its path."""
        for name in ("all", "any"):
            children = getattr(self, name)
            if children is not None:
                for index, child in enumerate(children):
                    yield from child.walk((*path, name, index))
                return
        yield path, self


def _depth(value: Any) -> int:
    """How deeply ``value`` (raw JSON) nests, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > 4 * MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


class RuleParams(SizedParams):
    """A rule strategy, as JSON: see docs/strategies.md for the fields and examples."""

    instrument: InstrumentRef
    timeframe: Timeframe = 1
    product: Product = "MIS"
    side: Literal["long", "short"] = "long"
    indicators: Annotated[dict[Name, IndicatorSpec], Field(max_length=MAX_ITEMS)] = {}
    entry: Condition
    exit: Condition | None = None
    stop_loss: Distance | None = None
    target: Distance | None = None
    trailing_stop: Distance | None = None
    no_entry_after: ClockTime | None = None
    exit_at: ClockTime | None = None

    @field_validator("entry", "exit", mode="before")
    @classmethod
    def _not_too_deep(cls, value: Any) -> Any:
        # A group nests as {"all": [ {...} ]}: two JSON levels a group, and a comparison's operands two more.
        if _depth(value) > 2 * MAX_DEPTH + 2:
            raise ValueError(f"conditions nest at most {MAX_DEPTH} groups deep")
        return value

    @model_validator(mode="after")
    def _references(self) -> RuleParams:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, spec in self.indicators.items():
            if spec.minutes is not None and spec.minutes % self.timeframe:
                problems.append(
                    (("indicators", name, "minutes"), f"must be a multiple of the timeframe ({self.timeframe})")
                )
        for root in ("entry", "exit"):
            condition = getattr(self, root)
            if condition is None:
                continue
            for path, comparison in condition.walk((root,)):
                assert comparison.left is not None and comparison.right is not None
                sides = (("left", comparison.left), ("right", comparison.right))
                for side, operand in sides:
                    if operand.indicator is not None and operand.indicator not in self.indicators:
                        problems.append(((*path, side, "indicator"), f"no indicator is named {operand.indicator!r}"))
                if problems:
                    continue
                if comparison.left.constant and comparison.right.constant:
                    problems.append(((*path, "right"), "compare a value that changes: an indicator or a price"))
                elif self._is_time(comparison.left) != self._is_time(comparison.right):
                    problems.append(((*path, "right"), "a time compares only with a time or a time_of_day indicator"))
        if self.no_entry_after is not None and self.exit_at is not None and self.no_entry_after > self.exit_at:
            problems.append((("no_entry_after",), "must not be later than exit_at"))
        if problems:
            raise invalid_at(*problems)
        return self

    def _is_time(self, operand: Operand) -> bool:
        if operand.time is not None:
            return True
        return operand.indicator is not None and self.indicators[operand.indicator].is_time


Values = dict[str, Decimal | None]


def operand_value(operand: Operand, values: Values) -> Decimal | None:
    if operand.indicator is not None:
        return values.get(f"indicator:{operand.indicator}")
    if operand.price is not None:
        return values.get(f"price:{operand.price}")
    if operand.number is not None:
        return operand.number
    assert operand.time is not None
    return minutes_of(operand.time)


def holds(condition: Condition, current: Values, previous: Values | None) -> bool:
    """Whether ``condition`` holds on the current bar; crossings also look at the previous bar, and any
    operand still warming up (None) makes a comparison false."""
    if condition.all is not None:
        return all(holds(child, current, previous) for child in condition.all)
    if condition.any is not None:
        return any(holds(child, current, previous) for child in condition.any)
    assert condition.left is not None and condition.right is not None
    left, right = operand_value(condition.left, current), operand_value(condition.right, current)
    if left is None or right is None:
        return False
    match condition.op:
        case ">":
            return left > right
        case "<":
            return left < right
        case ">=":
            return left >= right
        case "<=":
            return left <= right
    if previous is None:
        return False
    before_left, before_right = operand_value(condition.left, previous), operand_value(condition.right, previous)
    if before_left is None or before_right is None:
        return False
    if condition.op == "crosses_above":
        return before_left <= before_right and left > right
    return before_left >= before_right and left < right


@register
class RuleStrategy(SingleInstrumentStrategy):
    name = "rule"
    title = "Rule (no code)"
    Params = RuleParams
    drive = "bar"

    def __init__(self, params: RuleParams) -> None:
        super().__init__(params)
        self.rule = params
        self.indicators = {name: spec.build() for name, spec in params.indicators.items()}
        self.previous: Values | None = None

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if bar.instrument_id != self.instrument_id(ctx):
            return
        for indicator in self.indicators.values():
            indicator.update(bar)
        current: Values = {f"indicator:{name}": indicator.value for name, indicator in self.indicators.items()}
        current.update({"price:open": bar.open, "price:high": bar.high, "price:low": bar.low, "price:close": bar.close})
        try:
            self._decide(ctx, bar, current)
        finally:
            self.previous = current

    def _decide(self, ctx: Context, bar: Bar, current: Values) -> None:
        rule = self.rule
        clock = close_time(bar).astimezone(IST).time()
        pending = ctx.state.get("pending")
        if pending is not None:
            if pending["bars"] + 1 < PENDING_BARS:
                ctx.state["pending"] = {**pending, "bars": pending["bars"] + 1}
                return
            ctx.note(f"no fill for the {pending['what']} order after {PENDING_BARS} bars: deciding afresh")
            del ctx.state["pending"]
        position = ctx.position(LEG)
        if position == 0:
            if _at_or_after(clock, rule.no_entry_after) or _at_or_after(clock, rule.exit_at):
                return
            if holds(rule.entry, current, self.previous):
                quantity = rule.size(ctx, bar.instrument_id)
                side = ctx.buy if rule.side == "long" else ctx.sell
                side(LEG, bar.instrument_id, quantity, product=rule.product, reason="entry")
                ctx.state["pending"] = {"what": "entry", "bars": 0}
            return
        reason = self._exit_reason(ctx, bar, clock, current, position)
        if reason:
            ctx.close(LEG, reason=reason, product=rule.product)
            ctx.state["pending"] = {"what": "exit", "bars": 0}

    def _exit_reason(self, ctx: Context, bar: Bar, clock: time, current: Values, position: int) -> str:
        rule = self.rule
        if _at_or_after(clock, rule.exit_at):
            return "exit time"
        entry = Decimal(ctx.state["entry_price"]) if "entry_price" in ctx.state else None
        sign = 1 if position > 0 else -1
        close = bar.close
        if entry is not None:
            best = Decimal(ctx.state.get("best", entry))
            best = max(best, close) if sign > 0 else min(best, close)
            ctx.state["best"] = str(best)
            if rule.stop_loss and sign * (close - entry) <= -rule.stop_loss.of(entry):
                return "stop-loss"
            if rule.target and sign * (close - entry) >= rule.target.of(entry):
                return "target"
            if rule.trailing_stop and sign * (close - best) <= -rule.trailing_stop.of(best):
                return "trailing stop"
        if rule.exit is not None and holds(rule.exit, current, self.previous):
            return "exit condition"
        return ""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if fill.leg != LEG:
            return
        position = ctx.position(LEG)
        if position == 0:
            for key in ("entry_price", "entry_quantity", "best", "pending"):
                ctx.state.pop(key, None)
            return
        opening = (position > 0) == (fill.side == "BUY")
        if opening:
            # The average entry over partial fills.
            held = int(ctx.state.get("entry_quantity", 0))
            average = Decimal(ctx.state.get("entry_price", 0))
            total = held + fill.quantity
            entry = (average * held + fill.price * fill.quantity) / total
            ctx.state.update(entry_price=str(entry), entry_quantity=total, best=str(entry))
            if abs(position) >= self.rule.size(ctx, fill.instrument_id):
                ctx.state.pop("pending", None)


def _at_or_after(clock: time, limit: time | None) -> bool:
    return limit is not None and clock >= limit
