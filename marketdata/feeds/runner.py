"""Build and start feeds: for ``run_feed`` (its own process) and inside ``run_terminal`` (standalone)."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from django.conf import settings

from marketdata.feeds.base import Feed
from marketdata.feeds.publisher import Publisher
from marketdata.feeds.replay import ReplayFeed
from marketdata.feeds.simulator import MarketSession, SimulatedFeed, SimulatorSettings, underlying_key
from marketdata.models import Instrument, InstrumentType
from marketdata.quotes import get_quotes

logger = logging.getLogger(__name__)


def session_from_settings() -> MarketSession:
    return MarketSession(
        mode=settings.MARKETDATA_SIM_SESSION, holidays=[date.fromisoformat(d) for d in settings.NSE_HOLIDAYS]
    )


def _start_prices(instruments: list[Instrument]) -> dict:
    """Continue from the last stored quotes of spot instruments, so a restart does not jump prices."""
    spots = [i for i in instruments if i.instrument_type in {InstrumentType.EQ, InstrumentType.INDEX}]
    last = get_quotes([i.pk for i in spots])
    return {underlying_key(i): last[i.pk].ltp for i in spots if i.pk in last}


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
        feed: Feed = SimulatedFeed(
            on_quotes=publisher.publish,
            config=SimulatorSettings(
                rate=rate or settings.MARKETDATA_SIM_RATE, seed=seed, session=session_from_settings()
            ),
            start_prices=_start_prices(instruments),
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
