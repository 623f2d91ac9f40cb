"""Periodic work of the retention domain (queue: reports)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from retention.errors import ArchiveExists
from retention.months import Month
from retention.services.archive import archive_month, archived

CATCH_UP_MONTHS = 3  # a missed run (beat down at the turn of the month) is caught up by the next


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3300, ignore_result=True)
def archive_closed_months() -> list[str]:
    """Archive the months just closed that have no archive yet; idempotent (an archived month is skipped).

    Returns the months archived.
    """
    month = Month.containing(timezone.now()).previous()
    done = []
    for _ in range(CATCH_UP_MONTHS):
        if not archived(month):
            try:
                archive_month(month=month)
            except ArchiveExists:  # another run got there first, or a partial archive an operator must see
                pass
            else:
                done.append(str(month))
        month = month.previous()
    return done
