"""The engine that runs one strategy instance: events in, intents out, the same in backtest, paper and live.

``StrategyRun`` owns a strategy instance (with its indicators, rebuilt by ``warm_up``), the strategy's
persisted memory (``ctx.state``) and the positions it holds per leg, kept from its own fills. For each
event it builds a ``Context`` (or reuses the previous event's, when that one asked for nothing), calls
the strategy's handler and returns a ``Step``: the intents, each
with a deterministic key, and the log lines. It never places an order or touches the database: whoever
runs it (the deployment runner, a backtest) hands the intents on and feeds back the fills.

A strategy that raises gives ``StrategyCrashed`` with the traceback; its ``ctx.state`` changes from
that event are dropped, so a crashed event leaves the run as it was before it.

The state is kept twice: the JSON object and its serialised text. Each event's handler gets a fresh copy
(parsed from the text, so nothing it does reaches the run's copy before the event succeeds); afterwards
the handler's ``ctx.state`` is serialised once, which is also the check that it is JSON, and parsed back
only when the text changed. An event that leaves the state as it was costs one ``json.dumps``, and an
empty state none.

Bar-driven strategies whose timeframe is longer than a minute may be fed 1-minute bars: the engine
aggregates them into bars of the timeframe aligned to the 09:15 IST session open (a 5-minute bar covers
09:15-09:19) and hands the strategy each bar when its last minute arrives.
"""

from __future__ import annotations

import hashlib
import json
import traceback as tb
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from marketdata.hours import IST, MARKET_CLOSE, MARKET_OPEN
from strategies.contract import Bar, Context, Drive, Fill, Instruments, Intent, Params, Strategy, Tick, Timer
from strategies.errors import StrategyError, StrategyInvalid
from strategies.registry import strategy_class, validate_params

SNAPSHOT_VERSION = 1
_EMPTY = "{}"  # json.dumps({})
_SESSION_MINUTES = (MARKET_CLOSE.hour * 60 + MARKET_CLOSE.minute) - (MARKET_OPEN.hour * 60 + MARKET_OPEN.minute)


class StrategyCrashed(StrategyError):
    """Strategy code raised while handling ``event``; ``traceback`` is the formatted traceback text."""

    code = "strategy_crashed"

    def __init__(self, event: str, traceback: str) -> None:
        last = traceback.strip().splitlines()[-1] if traceback.strip() else "error"
        super().__init__(f"The strategy crashed on {event}: {last}", extra={"event": event, "traceback": traceback})
        self.event = event
        self.traceback = traceback


@dataclass(slots=True)  # not frozen: one is built per event, and a frozen dataclass's __init__ costs twice as much
class Step:
    """What one event produced: intents (keys filled) and log lines, as tuples, so that the many events
    that produce nothing can all return the one ``NOTHING``."""

    intents: tuple[Intent, ...] = ()
    log: tuple[str, ...] = ()


NOTHING = Step()


# --- bars of a timeframe from 1-minute bars ------------------------------------------------------------


def session_minute(ts: datetime) -> int:
    """Minutes from the 09:15 IST session open of ``ts``'s Indian day to ``ts`` (negative before the open)."""
    local = ts.astimezone(IST)
    return local.hour * 60 + local.minute - (MARKET_OPEN.hour * 60 + MARKET_OPEN.minute)


def bucket_start(ts: datetime, timeframe: int) -> datetime:
    """The open time (UTC) of the ``timeframe``-minute bar holding the minute ``ts``, aligned to 09:15 IST."""
    if timeframe < 1:
        raise ValueError("timeframe must be at least one minute")
    local = ts.astimezone(IST).replace(second=0, microsecond=0)
    offset = session_minute(local) % timeframe  # Python's % floors, so pre-open minutes align too
    return (local - timedelta(minutes=offset)).astimezone(ts.tzinfo)


def closes_bar(ts: datetime, timeframe: int) -> bool:
    """Whether the 1-minute bar opened at ``ts`` is the last minute of its ``timeframe``-minute bar.

    A bar also closes with the session's last minute (15:29 IST), so the 60-minute bar opened at 15:15 is
    complete at 15:29 though it spans 15 minutes."""
    minute = session_minute(ts)
    return (minute + 1) % timeframe == 0 or minute == _SESSION_MINUTES - 1


def merge_bars(bars: list[Bar], *, ts: datetime, timeframe: int) -> Bar:
    """One bar of ``timeframe`` from consecutive bars of one instrument (oldest first)."""
    return Bar(
        instrument_id=bars[0].instrument_id,
        ts=ts,
        open=bars[0].open,
        high=max(bar.high for bar in bars),
        low=min(bar.low for bar in bars),
        close=bars[-1].close,
        volume=sum(bar.volume for bar in bars),
        timeframe=timeframe,
    )


def aggregate(bars: Iterable[Bar], timeframe: int) -> list[Bar]:
    """Bars of ``timeframe`` minutes from 1-minute bars (any instruments, oldest first), aligned to 09:15 IST.

    Every bucket that has at least one minute gives a bar, the last one included even if incomplete;
    the result is ordered by open time, then instrument."""
    if timeframe == 1:
        return list(bars)
    groups: dict[tuple[datetime, int], list[Bar]] = {}
    for bar in bars:
        groups.setdefault((bucket_start(bar.ts, timeframe), bar.instrument_id), []).append(bar)
    return [
        merge_bars(sorted(group, key=lambda bar: bar.ts), ts=start, timeframe=timeframe)
        for (start, _), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1]))
    ]


class Aggregator:
    """Builds bars of ``timeframe`` incrementally from 1-minute bars, per instrument.

    ``add`` returns the bars completed by the minute: the minute's own bucket when it is the bucket's last
    minute, and an earlier bucket left open by missing minutes once a later minute shows it is over."""

    def __init__(self, timeframe: int) -> None:
        self.timeframe = timeframe
        self._open: dict[int, tuple[datetime, list[Bar]]] = {}

    def add(self, bar: Bar) -> list[Bar]:
        done: list[Bar] = []
        start = bucket_start(bar.ts, self.timeframe)
        pending = self._open.get(bar.instrument_id)
        if pending is not None and pending[0] != start:
            done.append(merge_bars(pending[1], ts=pending[0], timeframe=self.timeframe))
            pending = None
        if pending is None:
            pending = (start, [])
            self._open[bar.instrument_id] = pending
        pending[1].append(bar)
        if closes_bar(bar.ts, self.timeframe):
            done.append(merge_bars(pending[1], ts=start, timeframe=self.timeframe))
            del self._open[bar.instrument_id]
        return done


def _check_intent(intent: Intent) -> None:
    """Raises ValueError for an intent no order could carry (caught as a crash of the strategy)."""
    if not intent.leg or not isinstance(intent.leg, str):
        raise ValueError(f"intent has no leg: {intent!r}")
    if intent.side not in ("BUY", "SELL"):
        raise ValueError(f"intent side must be BUY or SELL: {intent!r}")
    if type(intent.quantity) is not int or intent.quantity <= 0:
        raise ValueError(f"intent quantity must be a positive integer: {intent!r}")
    if type(intent.instrument_id) is not int:
        raise ValueError(f"intent instrument must be an instrument id: {intent!r}")
    if intent.order_type in ("LIMIT", "SL") and intent.price is None:
        raise ValueError(f"a {intent.order_type} intent needs a price: {intent!r}")
    if intent.order_type in ("SL", "SL-M") and intent.trigger_price is None:
        raise ValueError(f"a {intent.order_type} intent needs a trigger price: {intent!r}")


# --- the run --------------------------------------------------------------------------------------------


class StrategyRun:
    """One strategy instance with its persisted state and positions.

    ``params`` is the raw JSON (validated here through the registry) or an already validated Params;
    ``snapshot`` restores ``state``, positions and legs saved by ``snapshot()``. Raises StrategyUnknown
    or StrategyInvalid (422) for an unknown kind, bad parameters or a malformed snapshot, and
    StrategyCrashed if the strategy's constructor raises."""

    def __init__(
        self,
        *,
        kind: str,
        params: Any,
        instruments: Instruments,
        snapshot: dict[str, Any] | None = None,
    ) -> None:
        cls = strategy_class(kind)
        self.kind = kind
        self.params: Params = params if isinstance(params, cls.Params) else validate_params(kind, params)
        self.instruments = instruments
        try:
            self.strategy: Strategy = cls(self.params)
        except Exception:
            raise StrategyCrashed("init", tb.format_exc()) from None
        # The state as a JSON object and as its serialised text (see the module's docstring).
        self._state: dict[str, Any] = {}
        self._state_json = _EMPTY
        self.positions: dict[str, int] = {}
        self.legs: dict[str, int] = {}
        self.started = False
        if snapshot is not None:
            self._restore(snapshot)
        # What a handler sees of the positions and legs: read-only views of the run's own dicts, which
        # change only between events (a fill is an event of its own), so no copy is made per event.
        self._positions_view = MappingProxyType(self.positions)
        self._legs_view = MappingProxyType(self.legs)
        # The last event's Context when that event asked for nothing (no intents, no log line): the next
        # event reuses it with its own time and a fresh copy of the state, rather than building another.
        self._spare: Context | None = None
        self._timeframe = int(self.strategy.timeframe)
        self._aggregator = Aggregator(self._timeframe) if self._timeframe > 1 else None
        self._on_bar = self.strategy.on_bar  # bound once: the handler called for every bar

    @property
    def drive(self) -> Drive:
        return self.strategy.drive

    @property
    def timeframe(self) -> int:
        return self._timeframe

    @property
    def state(self) -> dict[str, Any]:
        """The strategy's persisted memory as of the last event (read it, don't change it: events change it)."""
        return self._state

    # --- events

    def start(self, now: datetime) -> Step:
        """Calls ``on_start`` once; a run restored from a started snapshot does nothing."""
        if self.started:
            return NOTHING
        step = self._dispatch("start", None, now, self.strategy.on_start)
        self.started = True
        return step

    def on_bar(self, bar: Bar) -> Step:
        """A closed bar. A 1-minute bar given to a strategy of a longer timeframe is aggregated: the strategy
        sees each bar of its timeframe when complete (the step holds the intents of all bars completed)."""
        if self._aggregator is None or bar.timeframe == self._timeframe:
            return self._dispatch("bar", bar.instrument_id, bar.ts, self._on_bar, bar)
        intents: list[Intent] = []
        log: list[str] = []
        for ready in self._bars_for(bar):
            step = self._dispatch("bar", ready.instrument_id, ready.ts, self._on_bar, ready)
            intents.extend(step.intents)
            log.extend(step.log)
        return Step(tuple(intents), tuple(log))

    def on_tick(self, tick: Tick) -> Step:
        return self._dispatch("tick", tick.instrument_id, tick.ts, self.strategy.on_tick, tick)

    def on_fill(self, fill: Fill) -> Step:
        """Books ``fill`` into the leg's position first, so the handler sees the position it made."""
        if type(fill.quantity) is not int or fill.quantity <= 0:
            raise StrategyInvalid("A fill's quantity must be a positive integer.", extra={"field": "quantity"})
        if fill.side not in ("BUY", "SELL"):
            raise StrategyInvalid("A fill's side must be BUY or SELL.", extra={"field": "side"})
        if not fill.leg:
            raise StrategyInvalid("A fill must name its leg.", extra={"field": "leg"})
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        net = self.positions.get(fill.leg, 0) + signed
        if net:
            self.positions[fill.leg] = net
        else:
            self.positions.pop(fill.leg, None)
        self.legs[fill.leg] = fill.instrument_id
        return self._dispatch("fill", fill.instrument_id, fill.ts, self.strategy.on_fill, fill)

    def on_timer(self, timer: Timer) -> Step:
        return self._dispatch("timer", timer.name, timer.ts, self.strategy.on_timer, timer)

    def warm_up(self, bars: Iterable[Bar]) -> None:
        """Replays history (1-minute bars, or bars of the strategy's timeframe) to rebuild the strategy's
        indicators: intents and log lines are dropped and ``ctx.state`` is restored afterwards, so the run
        persists nothing from the replay. Raises StrategyCrashed if the strategy raises."""
        saved = self._state, self._state_json  # never handed out, so never changed in place
        try:
            for bar in bars:
                for ready in self._bars_for(bar):
                    self._dispatch("warm_up", None, ready.ts, self.strategy.on_bar, ready)
        finally:
            self._state, self._state_json = saved

    def subscriptions(self, now: datetime) -> list[int]:
        """The instruments whose bars or ticks the run needs: the strategy's, and every leg still held."""
        # A Context of its own (not the spare one events share), with a copy of the state.
        ctx = Context(
            self.params, json.loads(self._state_json), now, self.instruments, self._positions_view, self._legs_view
        )
        try:
            wanted = set(self.strategy.instruments(ctx))
        except Exception:
            raise StrategyCrashed("subscriptions", tb.format_exc()) from None
        wanted.update(self.legs[leg] for leg in self.positions if leg in self.legs)
        return sorted(wanted)

    # --- persistence

    def snapshot(self) -> dict[str, Any]:
        """The run's persisted part as a JSON object: the strategy's state, positions and legs."""
        return {
            "version": SNAPSHOT_VERSION,
            "kind": self.kind,
            "started": self.started,
            "state": json.loads(self._state_json),
            "positions": dict(sorted(self.positions.items())),
            "legs": dict(sorted(self.legs.items())),
        }

    def _restore(self, snapshot: dict[str, Any]) -> None:
        def bad(name: str, message: str) -> StrategyInvalid:
            return StrategyInvalid(f"snapshot.{name}: {message}", extra={"field": f"snapshot.{name}"})

        if not isinstance(snapshot, dict):
            raise StrategyInvalid("snapshot: must be a JSON object", extra={"field": "snapshot"})
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise bad("version", f"must be {SNAPSHOT_VERSION}")
        if snapshot.get("kind") != self.kind:
            raise bad("kind", f"was taken from a {snapshot.get('kind')!r} run, not {self.kind!r}")
        state, positions, legs = snapshot.get("state"), snapshot.get("positions"), snapshot.get("legs")
        if not isinstance(state, dict):
            raise bad("state", "must be a JSON object")
        for name, mapping in (("positions", positions), ("legs", legs)):
            if not isinstance(mapping, dict) or not all(
                isinstance(key, str) and type(value) is int for key, value in mapping.items()
            ):
                raise bad(name, "must map leg names to integers")
        assert isinstance(positions, dict) and isinstance(legs, dict)
        if missing := sorted(set(positions) - set(legs)):
            raise bad("legs", f"has no instrument for the held leg {missing[0]!r}")
        try:
            self._state_json = json.dumps(state, allow_nan=False)
        except (TypeError, ValueError):
            raise bad("state", "must be a JSON object") from None
        self._state = json.loads(self._state_json)
        self.positions = {leg: quantity for leg, quantity in positions.items() if quantity}
        self.legs = dict(legs)
        self.started = bool(snapshot.get("started", False))

    # --- internals

    def _bars_for(self, bar: Bar) -> list[Bar]:
        if self._aggregator is None or bar.timeframe == self.timeframe:
            return [bar]
        if bar.timeframe != 1:
            raise StrategyInvalid(
                f"A {bar.timeframe}-minute bar cannot feed a {self.timeframe}-minute strategy.",
                extra={"field": "timeframe"},
            )
        return self._aggregator.add(bar)

    def _dispatch(
        self, kind: str, subject: object, ts: datetime, handler: Callable[..., None], event: Any = None
    ) -> Step:
        """Runs ``handler`` for the event ``kind`` (``bar``, ``fill``...) of ``subject`` (an instrument id,
        a timer's name, or None) with ``event`` (the bar, fill...; None for ``start``), keying its intents
        by ``kind.subject``."""
        # The event's Context: the spare one the last event left, or a new one.
        saved = self._state_json
        state = {} if saved == _EMPTY else json.loads(saved)  # a copy, for this event only
        ctx = self._spare
        if ctx is not None:
            self._spare = None
            ctx.state = state
            ctx.now = ts
        else:
            ctx = Context(self.params, state, ts, self.instruments, self._positions_view, self._legs_view)
        try:
            if event is None:
                handler(ctx)
            else:
                handler(ctx, event)
            # The state must be a JSON object: checked here, where the culprit is known, by serialising it
            # once; it is read back only if the text changed.
            state = ctx.state
            if type(state) is dict and not state:
                text = _EMPTY
            elif isinstance(state, dict):
                text = json.dumps(state, allow_nan=False)
            else:
                raise TypeError(f"ctx.state must stay a JSON object, not {type(state).__name__}")
            for intent in ctx.intents:
                _check_intent(intent)
        except Exception:
            raise StrategyCrashed(kind, tb.format_exc()) from None
        if text != self._state_json:
            # During warm_up the state is carried through the replay; warm_up puts the saved one back.
            self._state, self._state_json = json.loads(text), text
        if kind == "warm_up":
            return NOTHING
        if not ctx.intents:
            if not ctx.log:
                self._spare = ctx  # nothing of it was handed out: the next event may reuse it
                return NOTHING
            return Step((), tuple(ctx.log))  # (intents, log) by position: keywords cost more
        event = kind if subject is None else f"{kind}.{subject}"
        return Step(self._keyed(event, ts, ctx.intents), tuple(ctx.log))

    @staticmethod
    def _keyed(event: str, ts: datetime, intents: list[Intent]) -> tuple[Intent, ...]:
        seen: dict[str, int] = {}
        keyed = []
        for intent in intents:
            n = seen.get(intent.leg, 0)
            seen[intent.leg] = n + 1
            keyed.append(replace(intent, key=intent_key(event, ts, intent.leg, n)))
        return tuple(keyed)


MAX_INTENT_KEY = 64  # leaves room for "dep<id>:<account>:" and a slice suffix in an order's idempotency key


def intent_key(event: str, ts: datetime, leg: str, n: int) -> str:
    """The deterministic key of the ``n``-th intent for ``leg`` in an event: the event names its instrument
    (``bar.<id>``), so two instruments' bars of one minute never share a key; the time is in UTC, so an
    event replayed from IST-stamped bars keys its intents as the live run did. A key longer than
    ``MAX_INTENT_KEY`` (a long leg or timer name) keeps its event prefix and hashes the rest."""
    key = f"{event}:{ts.astimezone(UTC):%Y%m%dT%H%M%S}:{leg}:{n}"
    if len(key) <= MAX_INTENT_KEY:
        return key
    return f"{event[:24]}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"
