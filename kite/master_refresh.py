"""When Kite's symbol master is refreshed: after the morning's first Kite sign-in.

The dump is downloaded with a signed-in account's session, and every Kite session ends at 06:00 IST,
so the day's master can be loaded only once a trader has signed in again. A sign-in (the
session-started callback registered by ``KiteConfig.ready``) queues ``kite.tasks.refresh_kite_instruments``
when the master has not been loaded since the last cut-off; the beat run at 08:15 IST is the safety
net and, with nobody signed in yet, waits for the sign-in instead of failing. One refresh is queued
per cut-off window however many traders sign in at once (a cache ``add``, held while a refresh may
run, so a failed one is queued again by a later sign-in).

The master counts as loaded at the start of its last successful import (the newest ``listed_at`` of
the Kite mapping); it is overdue when, past ``KITE_INSTRUMENTS_DUE_BY`` (IST), an active Kite
account exists and the master was not loaded since the cut-off (``terminal_kite_instruments_overdue``).
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone

from brokers.models import BrokerAccount, BrokerInstrument
from brokers.services.sessions import IST, next_cutoff

logger = logging.getLogger(__name__)

BROKER = "kite"
CUTOFF = "06:00"  # IST: every Kite session ends then
REFRESH_TASK = "kite.tasks.refresh_kite_instruments"
QUEUED_FOR = 900  # seconds a queued refresh holds off another: the task's time limit


def last_cutoff(now: datetime) -> datetime:
    """The last 06:00 IST at or before ``now``: the start of the window the day's master belongs to."""
    return next_cutoff(now, CUTOFF) - timedelta(days=1)


def master_loaded_at() -> datetime | None:
    """When the last successful import of Kite's dump started, or None when none ever did."""
    return BrokerInstrument.objects.filter(broker=BROKER).aggregate(at=Max("listed_at"))["at"]


def master_loaded_since_cutoff(now: datetime | None = None) -> bool:
    """Whether the master was loaded after Kite's last 06:00 IST cut-off."""
    loaded_at = master_loaded_at()
    return loaded_at is not None and loaded_at >= last_cutoff(now or timezone.now())


def master_overdue(now: datetime | None = None) -> bool:
    """Whether the master should have been loaded by now and was not: past ``KITE_INSTRUMENTS_DUE_BY``
    (IST) of the cut-off's day, an active Kite account exists, and no import succeeded since the
    cut-off. Whether the market trades today is the alert's business (``terminal_market_open``)."""
    now = now or timezone.now()
    cutoff = last_cutoff(now)
    hour, minute = (int(part) for part in str(settings.KITE_INSTRUMENTS_DUE_BY).split(":"))
    due = datetime.combine(cutoff.astimezone(IST).date(), time(hour, minute), tzinfo=IST)
    if now < due or not BrokerAccount.objects.filter(broker=BROKER, is_active=True).exists():
        return False
    return not master_loaded_since_cutoff(now)


def refresh_queue_on_sign_in(account: BrokerAccount) -> bool:
    """Queue the master's refresh after ``account`` signed in, when it is a Kite account, the master
    was not loaded since the cut-off, and no refresh was queued in the last ``QUEUED_FOR`` seconds.
    Return whether one was queued. Called after the sign-in commits."""
    if account.broker != BROKER:
        return False
    now = timezone.now()
    if master_loaded_since_cutoff(now):
        return False
    key = f"kite:instruments:refresh-queued:{last_cutoff(now):%Y%m%d}"
    if not cache.add(key, account.pk, timeout=QUEUED_FOR):
        return False
    try:
        # By name: the task runs this module's checks, so this module does not import the tasks.
        current_app.send_task(REFRESH_TASK, kwargs={"if_stale": True})
    except Exception:  # the task broker is down: the beat run (or the next sign-in) refreshes
        cache.delete(key)
        logger.warning("could not queue the Kite symbol master's refresh after a sign-in", exc_info=True)
        return False
    logger.info("kite symbol master refresh queued after account %s signed in", account.pk)
    return True
