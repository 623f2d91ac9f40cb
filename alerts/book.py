"""The active alerts of this process, indexed by instrument, evaluated on every batch of quotes.

The feed's tick listener (registered by ``AlertsConfig.ready``) calls ``on_quotes`` with each batch;
only the batch's instruments that have alerts cost more than a dict look-up. The alerts are read from
the database once and kept here; a change (saved, deleted, fired) bumps a version number in the
shared cache (``invalidate``), which every process compares with its own at most every
``RECHECK_SECONDS`` and then reloads, as rms/limits.py does for limits. A condition that holds is
fired through ``alerts.services.alert_fire``, whose conditional UPDATE lets one process win; the
loser learns it from the answer and stops trying for the cooldown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

from alerts.conditions import AVERAGE_CONDITIONS, Seen, holds, moving_average
from alerts.models import Average, Repeat
from alerts.selectors import active_alert_rows, recent_closes
from marketdata.listeners import PassedRange
from marketdata.quotes import Quote

logger = logging.getLogger(__name__)

VERSION_KEY = "alerts:version"
RECHECK_SECONDS = 1.0
AVERAGE_SECONDS = 30.0  # a moving average of minute closes is read again at most this often


@dataclass(slots=True)
class Armed:
    id: int
    instrument_id: int
    condition: str
    level: Decimal | None
    average: str
    average_minutes: int | None
    once: bool
    cooldown: float
    not_before: float  # time.time() before which it may not fire again (re-arming alerts)


def invalidate() -> None:
    """Tell every process (this one at its next batch) that the active alerts changed."""
    try:
        try:
            cache.incr(VERSION_KEY)
        except ValueError:
            cache.set(VERSION_KEY, 1, timeout=None)
    except Exception:  # a cache outage must not refuse the change: processes reload when it returns
        logger.warning("could not publish the alerts version", exc_info=True)


class AlertBook:
    """One process's active alerts (one instance per process; tests make two to play two processes)."""

    def __init__(self) -> None:
        self._by_instrument: dict[int, list[Armed]] = {}
        self._previous: dict[int, Decimal] = {}
        self._averages: dict[tuple[int, str, int], tuple[float, Decimal | None]] = {}
        self._version: object = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def on_quotes(self, quotes: list[Quote], passed: Mapping[int, PassedRange]) -> None:
        """The tick listener: evaluate the alerts of the batch's instruments, fire those that hold."""
        now = time.monotonic()
        if now - self._checked_at > RECHECK_SECONDS:
            self._sync(now)
        by_instrument = self._by_instrument
        for quote in quotes:
            armed = by_instrument.get(quote.instrument_id)
            if not armed:
                continue
            previous = self._previous.get(quote.instrument_id)
            self._previous[quote.instrument_id] = quote.ltp
            seen = _seen(quote, passed.get(quote.instrument_id), previous)
            for alert in list(armed):
                if alert.not_before > time.time():
                    continue
                average = self._average(alert) if alert.condition in AVERAGE_CONDITIONS else None
                if holds(alert.condition, level=alert.level, seen=seen, average=average):
                    self._fire(alert, seen)

    def _fire(self, alert: Armed, seen: Seen) -> None:
        from alerts.services import alert_fire

        price = seen.high if self._rising(alert) else seen.low  # the price that met the level
        try:
            firing = alert_fire(alert_id=alert.id, ltp=price)
        except Exception:
            logger.exception("could not fire alert %s", alert.id)
            alert.not_before = time.time() + 5  # not again on every tick of a failing database
            return
        if alert.once:
            self._drop(alert)
        else:
            alert.not_before = time.time() + alert.cooldown
        if firing is None:
            logger.debug("alert %s was fired elsewhere", alert.id)

    @staticmethod
    def _rising(alert: Armed) -> bool:
        return alert.condition.endswith(("above", "up"))

    def _drop(self, alert: Armed) -> None:
        armed = self._by_instrument.get(alert.instrument_id, [])
        if alert in armed:
            armed.remove(alert)

    def _average(self, alert: Armed) -> Decimal | None:
        minutes = alert.average_minutes or 0
        key = (alert.instrument_id, alert.average, minutes)
        now = time.monotonic()
        cached = self._averages.get(key)
        if cached is None or now - cached[0] > AVERAGE_SECONDS:
            span = minutes * 3 if alert.average == Average.EMA else minutes
            closes = recent_closes(instrument_id=alert.instrument_id, minutes=span)
            cached = (now, moving_average(alert.average, closes, minutes))
            self._averages[key] = cached
        return cached[1]

    def reload(self) -> None:
        """Read the active alerts again (at once; the listener does it when the version changes)."""
        rows = active_alert_rows()
        by_instrument: dict[int, list[Armed]] = {}
        for row in rows:
            cooldown = float(row["cooldown_seconds"])
            by_instrument.setdefault(row["instrument_id"], []).append(
                Armed(
                    id=row["id"],
                    instrument_id=row["instrument_id"],
                    condition=row["condition"],
                    level=row["level"],
                    average=row["average"],
                    average_minutes=row["average_minutes"],
                    once=row["repeat"] == Repeat.ONCE,
                    cooldown=cooldown,
                    not_before=_not_before(row["last_fired_at"], cooldown) if row["repeat"] == Repeat.REARM else 0.0,
                )
            )
        with self._lock:
            self._by_instrument = by_instrument

    def armed_count(self) -> int:
        return sum(len(armed) for armed in self._by_instrument.values())

    def _sync(self, now: float) -> None:
        try:
            version = cache.get(VERSION_KEY, 0)
        except Exception:
            logger.warning("could not read the alerts version; reloading", exc_info=True)
            version = object()
        self._checked_at = now
        if version != self._version:
            self.reload()
            self._version = version


def _seen(quote: Quote, passed: PassedRange | None, previous: Decimal | None) -> Seen:
    if passed is None:
        return Seen(ltp=quote.ltp, high=quote.ltp, low=quote.ltp, previous=previous, close=quote.close)
    return Seen(
        ltp=quote.ltp,
        high=max(quote.ltp, passed.ltp_high),
        low=min(quote.ltp, passed.ltp_low),
        previous=previous,
        close=quote.close,
    )


def _not_before(last_fired_at: datetime | None, cooldown: float) -> float:
    if last_fired_at is None:
        return 0.0
    return last_fired_at.timestamp() + cooldown if last_fired_at <= timezone.now() else 0.0


_book = AlertBook()
on_quotes = _book.on_quotes
