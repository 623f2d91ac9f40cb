from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from kite import metrics
from kite.instruments import (
    InstrumentImportFailed,
    NoSignedInAccount,
    client_source,
    refresh_instruments,
    signed_in_client,
)
from kite.master_refresh import master_loaded_since_cutoff

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True, time_limit=900, soft_time_limit=840)
def refresh_kite_instruments(*, if_stale: bool = False) -> dict[str, int]:
    """Import the day's Kite instruments dump, downloaded through the Kite client with a signed-in
    account's session (``signed_in_client``: the feed account first). Queued with ``if_stale`` by a
    Kite sign-in (``kite.master_refresh``), which skips it when the master was loaded since the 06:00
    IST cut-off meanwhile; run by beat before the market opens as the safety net.

    With no signed-in Kite account it waits for the morning's sign-in: counted in
    terminal_kite_instruments_waiting_for_sign_in_total, logged at info, no failure (the alert
    TerminalKiteInstrumentsNotLoaded pages if the master is still not loaded later in the day). A
    failure (a download refused or cut short, a malformed or implausibly small dump) keeps the
    previous master, is counted in terminal_kite_instruments_import_failures_total (an alert) and
    fails the task."""
    if if_stale and master_loaded_since_cutoff():
        logger.info("kite symbol master already loaded since the cut-off: refresh skipped")
        return {"skipped": 1}
    try:
        client = signed_in_client()
    except NoSignedInAccount:
        metrics.instrument_waits.inc()
        logger.info("kite symbol master waiting for a sign-in: no Kite account has a live session yet")
        return {"waiting": 1}
    try:
        report = refresh_instruments(
            client_source(client),
            min_percent=settings.KITE_INSTRUMENTS_MIN_PERCENT,
            min_rows=settings.KITE_INSTRUMENTS_MIN_ROWS,
        )
    except InstrumentImportFailed as exc:
        raise RuntimeError(f"kite instruments not imported ({exc.reason}): {exc.message}") from None
    return {"created": report.created, "updated": report.updated, "rejected": len(report.errors)}
