"""System checks: the checkpoint storage can be built, and the audit table's triggers are in place."""

from __future__ import annotations

from django.core.checks import Error, Tags, register
from django.db import connections

from compliance.models import AuditEvent

EXPECTED_TRIGGERS = {
    "postgresql": {"compliance_auditevent_no_update_delete", "compliance_auditevent_no_truncate"},
    "sqlite": {"compliance_auditevent_no_update", "compliance_auditevent_no_delete"},
}


@register()
def check_checkpoint_storage(app_configs, **kwargs) -> list[Error]:
    from django.core.files.storage import storages

    try:
        storages["audit_checkpoints"]
    except Exception as exc:  # an unusable storage must stop start-up with its reason
        return [
            Error(
                f"the audit_checkpoints storage cannot be used: {type(exc).__name__}: {exc}",
                hint="For S3 (AUDIT_CHECKPOINT_BUCKET) install boto3: pip install 'django-storages[s3]'.",
                id="compliance.E001",
            )
        ]
    return []


@register(Tags.database)
def check_audit_triggers(app_configs, databases=None, **kwargs) -> list[Error]:
    """Run by ``manage.py check --database default`` (and migrate): report missing append-only triggers."""
    errors = []
    for alias in databases or []:
        connection = connections[alias]
        expected = EXPECTED_TRIGGERS.get(connection.vendor)
        if expected is None:
            continue
        table = AuditEvent._meta.db_table
        with connection.cursor() as cursor:
            if table not in connection.introspection.table_names(cursor):
                continue  # not migrated yet
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT tgname FROM pg_trigger"
                    " WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgenabled <> 'D'",
                    [table],
                )
            else:
                cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
            present = {row[0] for row in cursor.fetchall()}
        missing = sorted(expected - present)
        if missing:
            errors.append(
                Error(
                    f"the audit table {table} on database {alias!r} lacks its append-only triggers: "
                    + ", ".join(missing)
                    + " (missing or disabled)",
                    hint="Re-create them (compliance migration 0002) and investigate how they were lost.",
                    id="compliance.E002",
                )
            )
    return errors
