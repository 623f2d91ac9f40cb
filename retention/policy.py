"""The retention window: the setting, the row the database triggers read, and what is retained."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

MINIMUM_YEARS = 5
DEFAULT_YEARS = 7

# The retained tables and the column that dates each row; the triggers of migration 0002 name the same.
RETAINED = {
    "orders_order": "created_at",
    "orders_orderevent": "created_at",
    "orders_trade": "executed_at",
}


def configured_years() -> int:
    return int(settings.RETENTION_YEARS)


def cutoff(*, years: int | None = None, now: dt.datetime | None = None) -> dt.datetime:
    """Return the instant before which rows are outside the window (as the triggers compute it)."""
    now = now or timezone.now()
    years = configured_years() if years is None else years
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February: PostgreSQL's interval arithmetic lands on the 28th
        return now.replace(year=now.year - years, day=28)


def stored_years(using: str = "default") -> int | None:
    """Return the window the database enforces (None when its policy row is missing)."""
    from retention.models import RetentionPolicy

    return RetentionPolicy.objects.using(using).filter(pk=1).values_list("years", flat=True).first()


def sync_policy(using: str = "default") -> int:
    """Write ``RETENTION_YEARS`` into the policy row the triggers read; return the years written.

    Needs the owner role on PostgreSQL (the application role may only read the row).
    """
    from retention.models import RetentionPolicy

    years = configured_years()
    RetentionPolicy.objects.using(using).update_or_create(pk=1, defaults={"years": years})
    return years


def sync_policy_after_migrate(*, using: str = "default", **_: Any) -> None:
    """post_migrate: keep the policy row equal to the setting (a setting below the minimum is left to
    the system check, which refuses to start)."""
    if configured_years() < MINIMUM_YEARS:
        return
    if "retention_policy" in connections[using].introspection.table_names():
        sync_policy(using)
