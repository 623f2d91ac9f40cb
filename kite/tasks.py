from __future__ import annotations

from celery import shared_task
from django.conf import settings

from kite.instruments import InstrumentImportFailed, client_source, refresh_instruments, signed_in_client


@shared_task(ignore_result=True, acks_late=True, time_limit=900, soft_time_limit=840)
def refresh_kite_instruments() -> dict[str, int]:
    """Import the day's Kite instruments dump (beat, before the market opens), downloaded through the
    Kite client with a signed-in account's session (``signed_in_client``: the feed account first). A
    failure (no signed-in account, a download refused or cut short, a malformed or implausibly small
    dump) keeps the previous master, is counted in terminal_kite_instruments_import_failures_total
    (an alert) and fails the task."""
    try:
        report = refresh_instruments(
            lambda: client_source(signed_in_client())(),
            min_percent=settings.KITE_INSTRUMENTS_MIN_PERCENT,
            min_rows=settings.KITE_INSTRUMENTS_MIN_ROWS,
        )
    except InstrumentImportFailed as exc:
        raise RuntimeError(f"kite instruments not imported ({exc.reason}): {exc.message}") from None
    return {"created": report.created, "updated": report.updated, "rejected": len(report.errors)}
