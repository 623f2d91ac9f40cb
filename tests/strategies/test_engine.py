"""The engine: contexts per event, deterministic intent keys, positions from fills, snapshots, warm-up,
crashes, and bars of a timeframe aggregated from 1-minute bars."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import registry
from strategies.contract import Bar, Context, Fill, Params, Strategy, Tick, Timer
from strategies.engine import StrategyCrashed, StrategyRun, aggregate, bucket_start, closes_bar
from strategies.errors import StrategyInvalid, StrategyUnknown
from tests.strategies.harness import MemoryInstruments, ist

DAY = date(2026, 3, 2)  # a Monday


class EchoParams(Params):
    instrument: int
    quantity: int = 1


class Echo(Strategy):
    """Buys on every bar whose close is above the previous close, counts bars in ctx.state and keeps the
    closes it has seen on the instance (like an indicator)."""

    name = "engine_echo"
    Params = EchoParams

    def __init__(self, params: EchoParams) -> None:
        super().__init__(params)
        self.closes: list[Decimal] = []
        self.seen: list[Bar] = []

    def instruments(self, ctx: Context) -> list[int]:
        return [ctx.params.instrument]

    def on_start(self, ctx: Context) -> None:
        ctx.state["started_at"] = ctx.now.isoformat()

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen.append(bar)
        ctx.state["bars"] = ctx.state.get("bars", 0) + 1
        if self.closes and bar.close > self.closes[-1]:
            ctx.buy("long", bar.instrument_id, ctx.params.quantity, reason="up")
            ctx.buy("long", bar.instrument_id, ctx.params.quantity, reason="up again")
            ctx.note(f"up at {bar.close}")
        if bar.close == Decimal("0"):
            raise RuntimeError("a zero close")
        if bar.close == Decimal("-1"):
            ctx.state["bad"] = Decimal("1")  # not JSON
        self.closes.append(bar.close)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        ctx.state["seen_position"] = ctx.position(fill.leg)

    def on_tick(self, ctx: Context, tick: Tick) -> None:
        if tick.ltp > 100:
            ctx.close_all(reason="tick above 100")

    def on_timer(self, ctx: Context, timer: Timer) -> None:
        ctx.note(timer.name)


class FiveMinute(Echo):
    name = "engine_echo_5m"
    timeframe = 5


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._CLASSES, Echo.name, Echo)
    monkeypatch.setitem(registry._CLASSES, FiveMinute.name, FiveMinute)


def bar(hhmm: str, close: str, *, instrument: int = 7, high: str | None = None, low: str | None = None) -> Bar:
    price = Decimal(close)
    return Bar(
        instrument_id=instrument,
        ts=ist(DAY, hhmm),
        open=price,
        high=Decimal(high) if high else price,
        low=Decimal(low) if low else price,
        close=price,
        volume=10,
    )


def make(kind: str = "engine_echo", snapshot: dict | None = None) -> StrategyRun:
    return StrategyRun(
        kind=kind, params={"instrument": 7, "quantity": 2}, instruments=MemoryInstruments(), snapshot=snapshot
    )


def test_it_validates_params_through_the_registry_naming_the_field():
    with pytest.raises(StrategyInvalid) as caught:
        StrategyRun(kind="engine_echo", params={"instrument": "x"}, instruments=MemoryInstruments())
    assert caught.value.extra["field"] == "instrument"
    with pytest.raises(StrategyInvalid) as caught:
        StrategyRun(kind="engine_echo", params={"instrument": 1, "extra": 1}, instruments=MemoryInstruments())
    assert caught.value.extra["field"] == "extra"
    with pytest.raises(StrategyUnknown):
        StrategyRun(kind="no_such_strategy", params={}, instruments=MemoryInstruments())


def test_it_gives_intents_keys_from_the_event_time_leg_and_sequence():
    run = make()
    assert run.on_bar(bar("09:15", "100")).intents == ()
    step = run.on_bar(bar("09:16", "101"))
    keys = [intent.key for intent in step.intents]
    stamp = "20260302T034600"  # 09:16 IST, in UTC
    assert keys == [f"bar.7:{stamp}:long:0", f"bar.7:{stamp}:long:1"]
    assert [intent.quantity for intent in step.intents] == [2, 2]
    assert step.log == ("up at 101",)


def test_the_same_event_evaluated_twice_yields_the_same_keys():
    first, second = make(), make()
    for run in (first, second):
        run.on_bar(bar("09:15", "100"))
    assert first.on_bar(bar("09:16", "101")).intents == second.on_bar(bar("09:16", "101")).intents


def test_it_tracks_positions_per_leg_from_fills_and_shows_them_to_the_handler():
    run = make()
    ts = ist(DAY, "09:17")
    run.on_fill(Fill(leg="long", instrument_id=7, side="BUY", quantity=3, price=Decimal("101"), ts=ts))
    assert run.positions == {"long": 3} and run.legs == {"long": 7}
    assert run.state["seen_position"] == 3
    run.on_fill(Fill(leg="long", instrument_id=7, side="SELL", quantity=3, price=Decimal("102"), ts=ts))
    assert run.positions == {} and run.legs == {"long": 7}
    assert run.state["seen_position"] == 0


def test_close_all_on_a_tick_flattens_every_held_leg():
    run = make()
    ts = ist(DAY, "09:20")
    run.on_fill(Fill(leg="b", instrument_id=8, side="SELL", quantity=5, price=Decimal("1"), ts=ts))
    run.on_fill(Fill(leg="a", instrument_id=7, side="BUY", quantity=2, price=Decimal("1"), ts=ts))
    step = run.on_tick(Tick(instrument_id=7, ts=ts, ltp=Decimal("101")))
    assert [(i.leg, i.instrument_id, i.side, i.quantity) for i in step.intents] == [
        ("a", 7, "SELL", 2),
        ("b", 8, "BUY", 5),
    ]
    assert step.intents[0].key == "tick.7:20260302T035000:a:0"
    assert run.on_timer(Timer(name="exit", ts=ts)).log == ("exit",)


def test_a_snapshot_round_trips_through_json():
    run = make()
    run.start(ist(DAY, "09:14"))
    run.on_bar(bar("09:15", "100"))
    run.on_fill(Fill(leg="long", instrument_id=7, side="BUY", quantity=2, price=Decimal("100"), ts=ist(DAY, "09:16")))
    saved = json.loads(json.dumps(run.snapshot()))
    restored = make(snapshot=saved)
    assert restored.snapshot() == run.snapshot()
    assert restored.positions == {"long": 2} and restored.legs == {"long": 7}
    assert restored.state == {"started_at": ist(DAY, "09:14").isoformat(), "bars": 1, "seen_position": 2}
    assert restored.start(ist(DAY, "09:30")).intents == ()  # started once, never again
    assert restored.state["started_at"] == ist(DAY, "09:14").isoformat()


@pytest.mark.parametrize(
    ("snapshot", "field"),
    [
        ([], "snapshot"),
        ({"version": 2}, "snapshot.version"),
        ({"version": 1, "kind": "other"}, "snapshot.kind"),
        ({"version": 1, "kind": "engine_echo", "state": [], "positions": {}, "legs": {}}, "snapshot.state"),
        ({"version": 1, "kind": "engine_echo", "state": {}, "positions": {"a": "1"}, "legs": {}}, "snapshot.positions"),
        ({"version": 1, "kind": "engine_echo", "state": {}, "positions": {"a": 1}, "legs": {}}, "snapshot.legs"),
    ],
)
def test_a_malformed_snapshot_is_refused_naming_the_field(snapshot, field):
    with pytest.raises(StrategyInvalid) as caught:
        make(snapshot=snapshot)
    assert caught.value.extra["field"] == field


def test_warm_up_rebuilds_the_instance_but_emits_and_persists_nothing():
    run = make()
    run.start(ist(DAY, "09:14"))
    before = run.snapshot()
    run.warm_up([bar("09:15", "100"), bar("09:16", "101"), bar("09:17", "102")])
    assert run.snapshot() == before
    assert run.strategy.closes == [Decimal("100"), Decimal("101"), Decimal("102")]
    # The next live bar compares with the warmed-up history.
    step = run.on_bar(bar("09:18", "103"))
    assert len(step.intents) == 2 and run.state["bars"] == 1


def test_a_strategy_that_raises_crashes_with_its_traceback_and_leaves_the_state_as_it_was():
    run = make()
    run.on_bar(bar("09:15", "100"))
    with pytest.raises(StrategyCrashed) as caught:
        run.on_bar(bar("09:16", "0"))
    assert caught.value.event == "bar"
    assert "RuntimeError: a zero close" in caught.value.traceback
    assert "on_bar" in caught.value.traceback
    assert caught.value.code == "strategy_crashed"
    assert run.state == {"bars": 1}


def test_state_that_is_not_json_crashes_the_event():
    run = make()
    with pytest.raises(StrategyCrashed) as caught:
        run.on_bar(bar("09:15", "-1"))
    assert "not JSON serializable" in caught.value.traceback
    assert run.state == {}


def test_an_intent_no_order_could_carry_crashes_the_event(monkeypatch: pytest.MonkeyPatch):
    class Zero(Echo):
        name = "engine_zero"

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            ctx.sell("short", bar.instrument_id, 0)

    monkeypatch.setitem(registry._CLASSES, Zero.name, Zero)
    run = StrategyRun(kind="engine_zero", params={"instrument": 7}, instruments=MemoryInstruments())
    with pytest.raises(StrategyCrashed, match="quantity must be a positive integer"):
        run.on_bar(bar("09:15", "1"))


def test_subscriptions_are_the_strategys_instruments_and_the_held_legs():
    run = make()
    assert run.subscriptions(ist(DAY, "09:15")) == [7]
    run.on_fill(Fill(leg="hedge", instrument_id=3, side="BUY", quantity=1, price=Decimal("5"), ts=ist(DAY, "09:16")))
    assert run.subscriptions(ist(DAY, "09:16")) == [3, 7]


def test_a_five_minute_bar_covers_0915_to_0919_ist():
    assert bucket_start(ist(DAY, "09:19"), 5) == ist(DAY, "09:15")
    assert bucket_start(ist(DAY, "09:20"), 5) == ist(DAY, "09:20")
    assert bucket_start(ist(DAY, "10:14"), 60) == ist(DAY, "09:15")
    assert bucket_start(ist(DAY, "10:15"), 60) == ist(DAY, "10:15")
    assert bucket_start(ist(DAY, "09:10"), 5) == ist(DAY, "09:10")  # pre-open minutes align backwards
    assert [closes_bar(ist(DAY, t), 5) for t in ("09:18", "09:19", "09:20", "09:24")] == [False, True, False, True]
    assert (
        closes_bar(ist(DAY, "15:29"), 60)
        and closes_bar(ist(DAY, "15:14"), 60)
        and not closes_bar(ist(DAY, "15:28"), 60)
    )
    assert closes_bar(ist(DAY, "15:14"), 15) and closes_bar(ist(DAY, "15:29"), 15)


def test_aggregate_merges_one_minute_bars_into_bars_of_the_timeframe():
    minutes = [bar(f"09:{15 + i}", str(100 + i), high=str(110 + i), low=str(90 - i)) for i in range(7)]
    five = aggregate(minutes, 5)
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.timeframe) for b in five] == [
        (ist(DAY, "09:15"), Decimal(100), Decimal(114), Decimal(86), Decimal(104), 50, 5),
        (ist(DAY, "09:20"), Decimal(105), Decimal(116), Decimal(84), Decimal(106), 20, 5),
    ]


def test_a_five_minute_strategy_fed_one_minute_bars_sees_each_bar_when_its_last_minute_closes():
    run = make("engine_echo_5m")
    for i in range(5):
        run.on_bar(bar(f"09:{15 + i}", str(100 + i)))
        assert len(run.strategy.seen) == (1 if i == 4 else 0)
    seen = run.strategy.seen[0]
    assert (seen.ts, seen.open, seen.close, seen.timeframe) == (ist(DAY, "09:15"), Decimal(100), Decimal(104), 5)
    # 09:20-09:22 then a gap to 09:26: the open 09:20 bar is handed over when the next bucket starts.
    for hhmm, close in (("09:20", "105"), ("09:22", "106"), ("09:26", "107")):
        step = run.on_bar(bar(hhmm, close))
    assert [b.ts for b in run.strategy.seen] == [ist(DAY, "09:15"), ist(DAY, "09:20")]
    assert run.strategy.seen[1].close == Decimal(106)
    assert step.intents[0].key == "bar.7:20260302T035000:long:0"  # the 09:20 IST bar


def test_keys_are_in_utc_whatever_zone_the_event_is_stamped_in():
    run = make()
    ts = datetime(2026, 3, 2, 3, 46, tzinfo=UTC)
    run.on_bar(
        Bar(
            instrument_id=7,
            ts=ts - timedelta(minutes=1),
            open=Decimal(1),
            high=Decimal(1),
            low=Decimal(1),
            close=Decimal(1),
            volume=1,
        )
    )
    step = run.on_bar(
        Bar(instrument_id=7, ts=ts, open=Decimal(2), high=Decimal(2), low=Decimal(2), close=Decimal(2), volume=1)
    )
    assert step.intents[0].key == "bar.7:20260302T034600:long:0"


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "instrument", "exchange", "symbol", "quantity", "lots", "timeframe", "fast", "slow", "mode", "product",
    "exit_at", "range_minutes", "direction", "no_entry_after", "underlying", "index", "entry_at",
    "leg_stop_percent", "mtm_stop",
]  # fmt: skip


@pytest.mark.parametrize("kind", ["ema_crossover", "opening_range_breakout", "short_straddle", "rule"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=ANY_JSON | st.dictionaries(st.sampled_from(FIELDS), ANY_JSON, max_size=8))
def test_any_json_given_to_any_strategy_validates_or_is_refused_naming_a_field(kind, raw):
    try:
        registry.validate_params(kind, raw)
    except StrategyInvalid as error:
        assert isinstance(error.extra["field"], str) and error.extra["field"]
        json.dumps(error.as_dict())


@pytest.mark.parametrize(
    ("change", "field"), [({"quantity": 0}, "quantity"), ({"side": "HOLD"}, "side"), ({"leg": ""}, "leg")]
)
def test_a_fill_that_cannot_be_booked_is_refused_and_changes_nothing(change, field):
    run = make()
    good = {
        "leg": "long",
        "instrument_id": 7,
        "side": "BUY",
        "quantity": 1,
        "price": Decimal(1),
        "ts": ist(DAY, "09:20"),
    }
    with pytest.raises(StrategyInvalid) as caught:
        run.on_fill(Fill(**(good | change)))
    assert caught.value.extra["field"] == field
    assert run.positions == {} and run.legs == {}


def test_a_strategy_whose_constructor_raises_crashes_on_init(monkeypatch: pytest.MonkeyPatch):
    class Broken(Echo):
        name = "engine_broken"

        def __init__(self, params: EchoParams) -> None:
            raise ZeroDivisionError("no")

    monkeypatch.setitem(registry._CLASSES, Broken.name, Broken)
    with pytest.raises(StrategyCrashed) as caught:
        StrategyRun(kind="engine_broken", params={"instrument": 7}, instruments=MemoryInstruments())
    assert caught.value.event == "init" and "ZeroDivisionError: no" in caught.value.traceback


def test_two_instruments_bars_of_one_minute_key_their_intents_apart():
    from strategies.engine import intent_key

    ts = ist(DAY, "09:20")
    assert intent_key("bar.7", ts, "long", 0) != intent_key("bar.8", ts, "long", 0)


def test_a_long_leg_name_gives_a_bounded_key_that_is_still_deterministic():
    from strategies.engine import MAX_INTENT_KEY, intent_key

    ts = ist(DAY, "09:20")
    key = intent_key("bar.7", ts, "x" * 40, 3)
    assert len(key) <= MAX_INTENT_KEY and key.startswith("bar.7:")
    assert key == intent_key("bar.7", ts, "x" * 40, 3) != intent_key("bar.7", ts, "x" * 40, 4)


class Nested(Echo):
    """Keeps a nested counter in ctx.state, holds on to the ctx.state it was given, and on a close of 0
    changes the nested value and then raises; on a close of 2 replaces ctx.state with a list."""

    name = "engine_nested"

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.kept = ctx.state
        counts = ctx.state.setdefault("counts", {"bars": 0, "pair": [1, 2]})
        if bar.close == Decimal(5):
            return  # a bar that changes nothing
        counts["bars"] += 1
        counts["pair"] = (counts["bars"], "x")  # a tuple, stored as a JSON list
        if bar.close == Decimal(0):
            raise RuntimeError("after changing the state")
        if bar.close == Decimal(2):
            ctx.state = ["not", "an", "object"]  # type: ignore[assignment]


def test_state_changes_in_nested_values_persist_and_read_back_as_json(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(registry._CLASSES, Nested.name, Nested)
    run = make("engine_nested")
    run.on_bar(bar("09:15", "1"))
    run.on_bar(bar("09:16", "1"))
    assert run.state == {"counts": {"bars": 2, "pair": [2, "x"]}}
    run.on_bar(bar("09:17", "5"))
    assert run.state == {"counts": {"bars": 2, "pair": [2, "x"]}}
    assert run.snapshot()["state"] == run.state and run.snapshot()["state"] is not run.state


def test_a_handler_gets_a_copy_of_the_state_that_nothing_changes_outside_its_event(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(registry._CLASSES, Nested.name, Nested)
    run = make("engine_nested")
    run.on_bar(bar("09:15", "1"))
    run.strategy.kept["counts"]["bars"] = 99  # the dict the last event was given, changed after it
    assert run.state == {"counts": {"bars": 1, "pair": [1, "x"]}}
    run.on_bar(bar("09:16", "5"))
    assert run.state == {"counts": {"bars": 1, "pair": [1, "x"]}}
    with pytest.raises(StrategyCrashed):
        run.on_bar(bar("09:17", "0"))
    assert run.state == {"counts": {"bars": 1, "pair": [1, "x"]}}  # the crashed event's change dropped
    run.on_bar(bar("09:18", "1"))
    assert run.state == {"counts": {"bars": 2, "pair": [2, "x"]}}


def test_state_replaced_by_something_other_than_an_object_crashes_the_event(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(registry._CLASSES, Nested.name, Nested)
    run = make("engine_nested")
    run.on_bar(bar("09:15", "1"))
    with pytest.raises(StrategyCrashed) as caught:
        run.on_bar(bar("09:16", "2"))
    assert "ctx.state must stay a JSON object, not list" in caught.value.traceback
    assert run.state == {"counts": {"bars": 1, "pair": [1, "x"]}}


@pytest.mark.parametrize("state", [{"price": Decimal("1.5")}, {"x": float("nan")}, {"when": date(2026, 3, 2)}])
def test_a_snapshot_whose_state_is_not_json_is_refused(state):
    snapshot = {"version": 1, "kind": "engine_echo", "state": state, "positions": {}, "legs": {}}
    with pytest.raises(StrategyInvalid) as caught:
        make(snapshot=snapshot)
    assert caught.value.extra["field"] == "snapshot.state"


def test_a_restored_state_reads_back_as_json():
    snapshot = {"version": 1, "kind": "engine_echo", "state": {"pair": (1, 2), 3: "x"}, "positions": {}, "legs": {}}
    run = make(snapshot=snapshot)
    assert run.state == {"pair": [1, 2], "3": "x"}
    run.on_bar(bar("09:15", "1"))
    assert run.state == {"pair": [1, 2], "3": "x", "bars": 1}


class Keeper(Strategy):
    """Keeps what it was handed: each event's state as it arrived, the state object and the context."""

    name = "engine_keeper"
    Params = EchoParams

    def __init__(self, params: EchoParams) -> None:
        super().__init__(params)
        self.arrived: list[dict] = []
        self.states: list[dict] = []
        self.contexts: list[Context] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.arrived.append(
            json.loads(json.dumps(ctx.state)) | {"types": [type(v).__name__ for v in ctx.state.values()]}
        )
        self.states.append(ctx.state)
        self.contexts.append(ctx)
        ctx.state["last"] = (str(bar.close), bar.instrument_id)  # a tuple: persisted as a JSON list
        if bar.close == Decimal("13"):
            ctx.positions["long"] = 5  # type: ignore[index]  # what the engine must refuse


def test_each_event_gets_a_fresh_copy_of_the_persisted_state_even_when_its_context_is_reused(monkeypatch):
    monkeypatch.setitem(registry._CLASSES, Keeper.name, Keeper)
    run = StrategyRun(kind=Keeper.name, params={"instrument": 7}, instruments=MemoryInstruments())
    for minute, close in (("09:15", "10"), ("09:16", "11"), ("09:17", "12")):
        assert run.on_bar(bar(minute, close)).intents == ()
    strategy = run.strategy
    assert isinstance(strategy, Keeper)
    # The events asked for nothing, so one Context served them all (the path under test)...
    assert strategy.contexts[0] is strategy.contexts[1] is strategy.contexts[2]
    # ...and each saw the state as persisted, read back from JSON (the tuple came back as a list), in a
    # dict of its own, never the one the previous handler wrote into.
    assert strategy.arrived == [
        {"types": []},
        {"last": ["10", 7], "types": ["list"]},
        {"last": ["11", 7], "types": ["list"]},
    ]
    assert len({id(state) for state in strategy.states}) == 3
    strategy.states[-1]["last"] = "changed after the event"
    assert run.state == {"last": ["12", 7]}
    assert run.snapshot()["state"] == {"last": ["12", 7]}


def test_a_handler_cannot_change_the_runs_positions_through_its_context(monkeypatch):
    monkeypatch.setitem(registry._CLASSES, Keeper.name, Keeper)
    run = StrategyRun(kind=Keeper.name, params={"instrument": 7}, instruments=MemoryInstruments())
    with pytest.raises(StrategyCrashed) as crashed:
        run.on_bar(bar("09:15", "13"))
    assert "does not support item assignment" in crashed.value.traceback
    assert run.positions == {}
