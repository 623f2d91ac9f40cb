"""A restarted simulator continues the market from the last stored quotes and candles, not from the sample
master's reference levels, so charts and mark-to-market see no jump at the restart."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata import quotes
from marketdata.feeds.publisher import Publisher
from marketdata.feeds.runner import build_feed
from marketdata.models import Candle, Instrument
from marketdata.sample_master import reference_by_underlying
from marketdata.selectors import candle_history

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 25, 4, 0, 5, tzinfo=UTC)  # 09:30:05 IST
STEPS = 24  # one batch every 10 s of wall clock, each moving the market an hour of trading time


def _first_run() -> tuple[dict[int, quotes.Quote], datetime]:
    """Run a simulator that moves prices well away from the references, stop it (storing its candles), and
    return each instrument's last price and the time of the last batch."""
    publisher = Publisher(source="sim")
    feed = build_feed(source="sim", publisher=publisher, seed=11)
    now = T0
    for step in range(STEPS):
        now = T0 + timedelta(seconds=10 * step)
        publisher.publish(feed.simulator.step(now=now, seconds=3600, rate=100_000))
    publisher.flush_candles()
    return quotes.get_quotes(list(Instrument.objects.values_list("pk", flat=True))), now


def _restart(now: datetime) -> tuple[Publisher, dict[int, quotes.Quote]]:
    """A new process's feed: its first batch, one 50 ms step after ``now``."""
    publisher = Publisher(source="sim")
    feed = build_feed(source="sim", publisher=publisher, seed=99)
    batch = feed.simulator.step(now=now, seconds=0.05, rate=100_000)
    publisher.publish(batch)
    return publisher, {q.instrument_id: q for q in batch}


def _spots_and_futures():
    return list(Instrument.objects.filter(instrument_type__in=["EQ", "INDEX", "FUT"]))


def _within_a_step(before: Decimal, after: Decimal, instrument: Instrument) -> bool:
    # A 50 ms GBM step moves a price by well under 0.01 %; allow 0.05 % and two ticks of rounding.
    return abs(after - before) <= before * Decimal("0.0005") + 2 * instrument.tick_size


def _moved_from_reference(last: dict[int, quotes.Quote]) -> None:
    """The first run must end far from the references, or continuing would be indistinguishable from a reset."""
    refs = reference_by_underlying()
    spots = Instrument.objects.filter(instrument_type="EQ")
    moved = [s for s in spots if not _within_a_step(refs[s.tradingsymbol].price, last[s.pk].ltp, s)]
    assert len(moved) >= 0.8 * len(spots)


def _bars(instrument: Instrument) -> list:
    return candle_history(instrument_id=instrument.pk, timeframe="1m", start=T0, end=T0 + timedelta(hours=1))


def test_a_restarted_simulator_continues_from_the_last_stored_quotes(sample_master):
    last, stopped = _first_run()
    _moved_from_reference(last)
    restarted = stopped + timedelta(minutes=1)  # the quote store survived (Redis, full stack)
    publisher, first = _restart(restarted)
    publisher.flush_candles()
    for instrument in _spots_and_futures():
        before, after = last[instrument.pk], first[instrument.pk]
        assert _within_a_step(before.ltp, after.ltp, instrument), instrument
        # The same session goes on: its open, previous close (the base of the day's change) and volume.
        assert (after.open, after.close) == (before.open, before.close), instrument
        assert after.volume >= before.volume, instrument
        assert abs(after.oi - before.oi) <= 20 * instrument.lot_size, instrument  # one step of open interest
    # The chart: the first bar after the restart opens where the last one before it closed.
    reliance = Instrument.objects.get(exchange="NSE", tradingsymbol="RELIANCE")
    *_, before, after = _bars(reliance)
    assert (before.ts, after.ts) == (stopped.replace(second=0), restarted.replace(second=0))
    assert _within_a_step(before.close, after.open, reliance)


def test_after_a_standalone_restart_it_continues_from_the_last_candles_and_extends_the_last_bar(sample_master):
    last, stopped = _first_run()
    _moved_from_reference(last)
    minute = stopped.replace(second=0)
    stored = {c.instrument_id: c for c in Candle.objects.filter(ts=minute)}
    quotes.store().clear()  # standalone mode: the quotes lived in the process's memory
    restarted = stopped + timedelta(seconds=3)  # still within the minute of the last stored candle
    publisher, first = _restart(restarted)
    publisher.flush_candles()
    for instrument in _spots_and_futures():
        assert _within_a_step(stored[instrument.pk].close, first[instrument.pk].ltp, instrument), instrument
    # The chart: the minute the restart fell in keeps what was stored of it and goes on from its close.
    reliance = Instrument.objects.get(exchange="NSE", tradingsymbol="RELIANCE")
    before, seam = stored[reliance.pk], _bars(reliance)[-1]
    assert seam.ts == minute
    assert seam.open == before.open
    assert seam.high >= before.high and seam.low <= before.low
    assert seam.volume >= before.volume
    assert _within_a_step(before.close, seam.close, reliance)
