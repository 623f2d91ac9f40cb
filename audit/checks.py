"""System checks: the checkpoint storage can be built, and the audit table's triggers and append
functions are in place and unaltered."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from audit.models import AuditEvent

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


# SHA-256 of each definition as PostgreSQL prints it (pg_get_functiondef, pg_get_triggerdef plus the
# trigger's enabled state; SQLite: the trigger's stored SQL), with the schema name written as <schema>
# and the chain limit as <chains>. A definition that differs was replaced: by a migration that forgot
# to update these (then update them, from definition_digests), or by someone who meant to get round
# the trail's defences. Taken from PostgreSQL 15; another major version may print them differently.
EXPECTED_DIGESTS = {
    "postgresql": {
        "compliance_auditevent_no_update_delete": "d8df05e9b20ca072c669ae6052f9b75d3c0e42c7d6b0a52857db94439ad27be6",
        "compliance_auditevent_no_truncate": "dca8466a3d419769a4730ed6786e71f4393512ec6cba4b3d1130815c7afcfd72",
        "compliance_auditevent_reject_change": "9041e9693c1e030553cfb7ca41c02fbd98162b8f2fe6ce0766093f231440ea60",
        "compliance_audit_chain_limit": "b52ab4c1baffca2f4c4fb42a2876d523e27c988e720f98d7b12b6bd2a1a8c605",
        "compliance_audit_head": "bb930ac98c8081c67d10a6c33b2b20f51ff8a181ff8782a2fe00f8845f07da8e",
        "compliance_audit_insert": "e5bdec63c03f2505c168100006539d7432372b6789ca44ab1cb5daa0eed7cfe0",
    },
    "sqlite": {
        "compliance_auditevent_no_update": "9821489250e94e4c63a8102de148026f41e683eac973253a846cd7b99ef03486",
        "compliance_auditevent_no_delete": "03f5621000e6e1c8a21b57382d169cd78b9b0aa24e928941f4a6b272a478082e",
    },
}
POSTGRES_FUNCTIONS = (
    "compliance_auditevent_reject_change",
    "compliance_audit_chain_limit",
    "compliance_audit_head",
    "compliance_audit_insert",
)
_CHAIN_LIMIT = re.compile(r"(AS \$function\$ SELECT )(\d+)( \$function\$)")


def definition_digests(connection) -> dict[str, str]:
    """Return {name: digest} of the audit table's user triggers (PostgreSQL: and the audit functions)."""
    table = AuditEvent._meta.db_table
    definitions: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT current_schema(), quote_ident(current_schema())")
            schema, quoted = cursor.fetchone()
            cursor.execute(
                "SELECT tgname, pg_get_triggerdef(oid) || ' ' || tgenabled::text FROM pg_trigger"
                " WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
            rows = cursor.fetchall()
            cursor.execute(
                "SELECT proname, pg_get_functiondef(oid) FROM pg_proc"
                " WHERE proname = ANY(%s) AND pronamespace = current_schema()::regnamespace",
                [list(POSTGRES_FUNCTIONS)],
            )
            rows += cursor.fetchall()
            for name, text in rows:
                text = text.replace(f"{quoted}.", "<schema>.").replace(f"'{schema}'", "'<schema>'")
                if name == "compliance_audit_chain_limit":
                    text = _CHAIN_LIMIT.sub(r"\1<chains>\3", text)
                definitions.setdefault(name, []).append(text)
        else:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
            for name, text in cursor.fetchall():
                definitions.setdefault(name, []).append(text)
    # An overload beside the original makes the name's digest differ too.
    return {name: hashlib.sha256("\n".join(sorted(texts)).encode()).hexdigest() for name, texts in definitions.items()}


@register(Tags.database)
def check_audit_triggers(app_configs, databases=None, **kwargs) -> list[CheckMessage]:
    """Run by ``manage.py check --database default`` (and migrate): report missing, disabled, altered or
    added triggers on the audit table, and altered append functions."""
    errors: list[CheckMessage] = []
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
        errors += _altered_definitions(connection, alias, reported=set(missing))
        errors += _chain_limit_differs(connection, alias)
        errors += _connected_as_owner(connection, alias)
    return errors


def _altered_definitions(connection, alias: str, *, reported: set[str]) -> list[Error]:
    """Report definitions that differ from the shipped ones, except triggers ``reported`` as missing or off."""
    expected = EXPECTED_DIGESTS[connection.vendor]
    found = definition_digests(connection)
    altered = sorted(
        name for name in expected if name in found and found[name] != expected[name] and name not in reported
    )
    added = sorted(set(found) - set(expected))
    missing = sorted(name for name in set(expected) - set(found) if name not in EXPECTED_TRIGGERS[connection.vendor])
    if not (altered or added or missing):
        return []
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (("altered", altered), ("added", added), ("missing", missing))
        if names
    ]
    return [
        Error(
            f"the audit trail's triggers or append functions on database {alias!r} are not the ones shipped "
            f"({'; '.join(parts)})",
            hint="Someone with the owner's or a superuser's rights changed them: treat it as possible tampering, "
            "restore them from compliance migrations 0002 and 0005 and run verify_audit.",
            id="compliance.E003",
        )
    ]


def _chain_limit_differs(connection, alias: str) -> list[Warning]:
    if connection.vendor != "postgresql":
        return []
    # Read from its definition: the application role may not execute it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_functiondef(p) FROM to_regprocedure('compliance_audit_chain_limit()') AS p"
            " WHERE p IS NOT NULL"
        )
        row = cursor.fetchone()
    found = _CHAIN_LIMIT.search(row[0]) if row else None
    if found is None:
        return []  # missing or altered: reported by _altered_definitions
    limit = int(found.group(2))
    if limit == settings.AUDIT_CHAINS:
        return []
    return [
        Warning(
            f"AUDIT_CHAINS is {settings.AUDIT_CHAINS} but database {alias!r} accepts audit chains 1..{limit}",
            hint="Run manage.py audit_chains as the owner role to make the database accept AUDIT_CHAINS.",
            id="compliance.W001",
        )
    ]


def _connected_as_owner(connection, alias: str) -> list[Warning]:
    """In production, warn when the connected role can act as the owner of the audit table."""
    if connection.vendor != "postgresql" or not settings.PRODUCTION:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relowner::regrole::text, pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class"
            " WHERE oid = %s::regclass",
            [AuditEvent._meta.db_table],
        )
        owner, can_act_as_owner = cursor.fetchone()
    if not can_act_as_owner:
        return []
    return [
        Warning(
            f"database {alias!r} is used as a role that can act as {owner}, the owner of the audit trail, which "
            "can disable its triggers",
            hint="Right for manage.py migrate; the running application must connect as the role made by "
            "deploy/postgres/app_role.sql.",
            id="compliance.W002",
        )
    ]
