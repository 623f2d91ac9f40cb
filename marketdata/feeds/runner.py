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
    """Return a subscribed, not yet started feed over the active instruments (the first ``limit``)."""
    instruments = list(Instrument.objects.filter(is_active=True).order_by("pk")[:limit])
    if source == "sim":
        last, bars = resume_points(instruments)
        if publisher.store_candles:
            publisher.aggregator.resume(bars)
        feed: Feed = SimulatedFeed(
            on_quotes=publisher.publish,
            config=SimulatorSettings(
                rate=rate or settings.MARKETDATA_SIM_RATE, seed=seed, session=session_from_settings()
            ),
            resume_from=last,
            on_idle=publisher.heartbeat,
        )
    elif source == "replay":
        if path is None:
            raise ValueError("replay needs a file")
        feed = ReplayFeed(on_quotes=publisher.publish, path=path, speed=speed, keep_timestamps=keep_timestamps)
    else:
        raise ValueError(f"unknown feed source {source!r}")
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
