"""System checks: a window below the minimum refuses to start; a database enforcing another window warns."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError

from retention.policy import MINIMUM_YEARS, configured_years, stored_years


@checks.register(checks.Tags.compatibility)
def retention_window(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    years = configured_years()
    if years < MINIMUM_YEARS:
        return [
            checks.Error(
                f"RETENTION_YEARS is {years}; the trade trail, orders and the audit trail must be kept at least "
                f"{MINIMUM_YEARS} years.",
                hint=f"Set RETENTION_YEARS to {MINIMUM_YEARS} or more (the default is 7).",
                id="retention.E001",
            )
        ]
    return []


@checks.register(checks.Tags.database)
def retention_policy_row(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if not databases or "default" not in databases:
        return []
    try:
        stored = stored_years()
    except DatabaseError:  # not migrated yet
        return []
    if stored != configured_years():
        return [
            checks.Warning(
                f"The database enforces a retention window of {stored} years but RETENTION_YEARS is "
                f"{configured_years()}.",
                hint="Run `manage.py retention_policy` (or migrate) as the database owner role.",
                id="retention.W001",
            )
        ]
    return []
