"""Make compliance_auditevent append-only in the database itself.

PostgreSQL: a row trigger rejects every UPDATE and DELETE, and a statement trigger rejects TRUNCATE
(TRUNCATE never fires row triggers). SQLite: triggers reject UPDATE and DELETE (it has no TRUNCATE).
The error carries SQLSTATE ZA001 on PostgreSQL so that it can be told apart from a privilege error.

These triggers stop accidents and a compromised application; a database superuser can still disable
them (ALTER TABLE ... DISABLE TRIGGER, session_replication_role), which is why every row is also
hash-chained and the chain head is signed into checkpoints outside the database.

The SQL is written out here, not imported, so that this migration keeps meaning what it meant when it
ran. On SQLite, a later migration that rebuilds this table (most AlterField/AddField do) drops the
triggers with the old table and must create them again.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE FUNCTION compliance_auditevent_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'ZA001';
END;
$$;
CREATE TRIGGER compliance_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION compliance_auditevent_reject_change();
CREATE TRIGGER compliance_auditevent_no_truncate
    BEFORE TRUNCATE ON compliance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_auditevent_reject_change();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS compliance_auditevent_no_truncate ON compliance_auditevent;
DROP TRIGGER IF EXISTS compliance_auditevent_no_update_delete ON compliance_auditevent;
DROP FUNCTION IF EXISTS compliance_auditevent_reject_change();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER compliance_auditevent_no_update BEFORE UPDATE ON compliance_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE on compliance_auditevent is not allowed'); END""",
    """CREATE TRIGGER compliance_auditevent_no_delete BEFORE DELETE ON compliance_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE on compliance_auditevent is not allowed'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS compliance_auditevent_no_update",
    "DROP TRIGGER IF EXISTS compliance_auditevent_no_delete",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise NotImplementedError(
                f"no append-only triggers for {schema_editor.connection.vendor}; add them before using it"
            )
        for sql in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(sql, params=None)  # None: the % in RAISE is not a placeholder

    return run


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
