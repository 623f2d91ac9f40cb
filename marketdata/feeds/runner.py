"""Build and start feeds: for ``run_feed`` (its own process) and inside ``run_terminal`` (standalone)."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from django.conf import settings

from marketdata.candles import Bar
from marketdata.feeds.base import Feed
from marketdata.feeds.publisher import Publisher
from marketdata.feeds.replay import ReplayFeed
from marketdata.feeds.simulator import MarketSession, SimulatedFeed, SimulatorSettings
from marketdata.feeds.sources import FeedRequest, feed_source
from marketdata.models import Instrument
from marketdata.quotes import Quote, get_quotes
from marketdata.selectors import candle_last

logger = logging.getLogger(__name__)


def session_from_settings() -> MarketSession:
    return MarketSession(
        mode=settings.MARKETDATA_SIM_SESSION, holidays=[date.fromisoformat(d) for d in settings.NSE_HOLIDAYS]
    )


def resume_points(instruments: list[Instrument]) -> tuple[dict[int, Quote], list[Bar]]:
    """Where a restarted simulator continues: each instrument's last quote (the quote store; in standalone
    mode it lived in memory and is gone, so else a quote rebuilt from its last stored candle's close) and
    the last stored bars, which the candle aggregator extends rather than replaces."""
    ids = [i.pk for i in instruments]
    last = get_quotes(ids)
    bars = [
        Bar(c.instrument_id, c.ts, c.open, c.high, c.low, c.close, c.volume, c.oi)
        for c in candle_last(instrument_ids=ids).values()
    ]
    for bar in bars:
        stored = last.get(bar.instrument_id)
        if stored is None or stored.ts < bar.ts:
            last[bar.instrument_id] = Quote(instrument_id=bar.instrument_id, ltp=bar.close, ts=bar.ts, oi=bar.oi)
    return last, bars


def build_simulator(request: FeedRequest) -> Feed:
    """The ``sim`` source: the simulator, resuming from each instrument's last quote and bar."""
    last, bars = resume_points(list(request.instruments))
    if request.publisher.store_candles:
        request.publisher.aggregator.resume(bars)
    return SimulatedFeed(
        on_quotes=request.publisher.publish,
        config=SimulatorSettings(
            rate=request.rate or settings.MARKETDATA_SIM_RATE, seed=request.seed, session=session_from_settings()
        ),
        resume_from=last,
        on_idle=request.publisher.heartbeat,
    )


def build_replay(request: FeedRequest) -> Feed:
    """The ``replay`` source: recorded ticks or candles from ``request.path``."""
    if request.path is None:
        raise ValueError("replay needs a file")
    return ReplayFeed(
        on_quotes=request.publisher.publish,
        path=request.path,
        speed=request.speed,
        keep_timestamps=request.keep_timestamps,
    )


def build_feed(
    *,
    source: str,
    publisher: Publisher,
    seed: int | None = None,
    rate: float | None = None,
    path: Path | None = None,
    speed: float = 1.0,
    keep_timestamps: bool = False,
    limit: int | None = None,
) -> Feed:
    """Return a subscribed, not yet started feed of the registered ``source`` (``sources.py``) over the
    active instruments (the first ``limit``). Raises UnknownFeedSource, or what the source's factory
    raises (a ``MarketDataError`` when it cannot build its feed now)."""
    factory = feed_source(source).factory
    instruments = list(Instrument.objects.filter(is_active=True).order_by("pk")[:limit])
    request = FeedRequest(
        source=source,
        publisher=publisher,
        instruments=instruments,
        seed=seed,
        rate=rate,
        path=path,
        speed=speed,
        keep_timestamps=keep_timestamps,
    )
    feed = factory(request)
    feed.subscribe(instruments)
    logger.info("feed ready", extra={"source": source, "instruments": len(instruments)})
    return feed


def start_simulator_in_process() -> Feed | None:
    """Standalone mode: run the simulator on a thread of this (the web) process; None if no instruments."""
    publisher = Publisher(source="sim")
    feed = build_feed(source="sim", publisher=publisher)
    if not getattr(feed, "instruments", None):
        logger.warning("no instruments loaded; the simulator is not started (run manage.py load_instruments --sample)")
        return None
    feed.start()
    return feed
