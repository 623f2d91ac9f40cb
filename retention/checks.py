"""System checks: a window below the minimum refuses to start; a database enforcing another window warns."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError, connection

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


# The triggers of migration 0002, by vendor (SQLite has no TRUNCATE).
TRIGGERS = {
    "postgresql": {
        f"retention_{name}_no_{act}" for name in ("order", "orderevent", "trade") for act in ("delete", "truncate")
    },
    "sqlite": {f"retention_{name}_no_delete" for name in ("order", "orderevent", "trade")},
}


def enabled_triggers() -> set[str]:
    """The retention triggers present (and, on PostgreSQL, enabled) in the default database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'retention%%' AND tgenabled <> 'D'")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'retention%%'")
        return {row[0] for row in cursor.fetchall()}


@checks.register(checks.Tags.database)
def retention_triggers(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The database must still refuse deletes inside the window: every trigger present and enabled.

    On SQLite a migration that rebuilds a retained table drops its trigger with the old table."""
    expected = TRIGGERS.get(connection.vendor)
    if not databases or "default" not in databases or expected is None:
        return []
    try:
        missing = expected - enabled_triggers()
    except DatabaseError:
        return []
    if missing == expected and "retention_policy" not in connection.introspection.table_names():
        return []  # not migrated yet
    if missing:
        return [
            checks.Error(
                f"Retention triggers missing or disabled: {', '.join(sorted(missing))}; deleting retained rows "
                "would not be refused by the database.",
                hint="Re-create them as retention migration 0002 does (a later migration that rebuilt the table "
                "on SQLite must do so), or enable them (ALTER TABLE ... ENABLE TRIGGER, as the owner).",
                id="retention.E002",
            )
        ]
    return []
