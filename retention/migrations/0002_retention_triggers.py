"""Refuse, in the database, deleting orders, order events and trades inside the retention window or
under a legal hold.

PostgreSQL: a BEFORE DELETE row trigger on each table checks the row's own time (orders and order
events by ``created_at``, trades by ``executed_at``) against ``now() - <years>`` read from the one-row
``retention_policy``, and the row's organisation (through its broker account) against
``retention_legalhold``; a BEFORE TRUNCATE statement trigger refuses a TRUNCATE while the table holds
any row inside the window, or any row at all while a hold is active. A missing policy row refuses
every delete. Errors carry SQLSTATE ZR001 and a message starting with ``retention:``.

SQLite: BEFORE DELETE triggers with the same conditions (it has no TRUNCATE). Django stores datetimes
there as UTC text, ``YYYY-MM-DD HH:MM:SS[.ffffff]``, which compares as text with the cutoff.

Like the audit table's triggers, these stop accidents and a compromised application role (which may
neither change the policy row nor disable triggers: deploy/postgres/app_role.sql); the owner role and
superusers can switch them off, which is why closed months are also archived outside the database.
The SQL is written out here so that this migration keeps meaning what it meant when it ran; a later
migration that rebuilds one of these tables on SQLite drops its trigger and must create it again.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE FUNCTION retention_check_delete(p_table text, p_id bigint, p_at timestamptz, p_account bigint)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_years integer;
BEGIN
    SELECT years INTO v_years FROM retention_policy WHERE id = 1;
    IF v_years IS NULL THEN
        RAISE EXCEPTION 'retention: no retention policy row; deleting from % is refused', p_table
            USING ERRCODE = 'ZR001';
    END IF;
    IF p_at > now() - make_interval(years => v_years) THEN
        RAISE EXCEPTION 'retention: % row % of % is inside the % year retention window', p_table, p_id, p_at, v_years
            USING ERRCODE = 'ZR001';
    END IF;
    IF EXISTS (
        SELECT 1 FROM retention_legalhold h JOIN brokers_brokeraccount a ON a.organisation_id = h.organisation_id
        WHERE a.id = p_account AND h.active
    ) THEN
        RAISE EXCEPTION 'retention: % row % belongs to an organisation under legal hold', p_table, p_id
            USING ERRCODE = 'ZR001';
    END IF;
END;
$$;

CREATE FUNCTION retention_order_delete() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM retention_check_delete(TG_TABLE_NAME, OLD.id, OLD.created_at, OLD.account_id);
    RETURN OLD;
END;
$$;
CREATE FUNCTION retention_orderevent_delete() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM retention_check_delete(
        TG_TABLE_NAME, OLD.id, OLD.created_at, (SELECT account_id FROM orders_order WHERE id = OLD.order_id));
    RETURN OLD;
END;
$$;
CREATE FUNCTION retention_trade_delete() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM retention_check_delete(TG_TABLE_NAME, OLD.id, OLD.executed_at, OLD.account_id);
    RETURN OLD;
END;
$$;

-- TG_ARGV[0]: the column that dates the table's rows.
CREATE FUNCTION retention_truncate() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_years integer;
    v_inside boolean;
BEGIN
    SELECT years INTO v_years FROM retention_policy WHERE id = 1;
    IF v_years IS NULL THEN
        RAISE EXCEPTION 'retention: no retention policy row; TRUNCATE of % is refused', TG_TABLE_NAME
            USING ERRCODE = 'ZR001';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I > $1)', TG_TABLE_NAME, TG_ARGV[0])
        INTO v_inside USING now() - make_interval(years => v_years);
    IF v_inside THEN
        RAISE EXCEPTION 'retention: TRUNCATE of % is refused: it holds rows inside the % year retention window',
            TG_TABLE_NAME, v_years USING ERRCODE = 'ZR001';
    END IF;
    IF EXISTS (SELECT 1 FROM retention_legalhold WHERE active) THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', TG_TABLE_NAME) INTO v_inside;
        IF v_inside THEN
            RAISE EXCEPTION 'retention: TRUNCATE of % is refused while a legal hold is active', TG_TABLE_NAME
                USING ERRCODE = 'ZR001';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER retention_order_no_delete BEFORE DELETE ON orders_order
    FOR EACH ROW EXECUTE FUNCTION retention_order_delete();
CREATE TRIGGER retention_orderevent_no_delete BEFORE DELETE ON orders_orderevent
    FOR EACH ROW EXECUTE FUNCTION retention_orderevent_delete();
CREATE TRIGGER retention_trade_no_delete BEFORE DELETE ON orders_trade
    FOR EACH ROW EXECUTE FUNCTION retention_trade_delete();
CREATE TRIGGER retention_order_no_truncate BEFORE TRUNCATE ON orders_order
    FOR EACH STATEMENT EXECUTE FUNCTION retention_truncate('created_at');
CREATE TRIGGER retention_orderevent_no_truncate BEFORE TRUNCATE ON orders_orderevent
    FOR EACH STATEMENT EXECUTE FUNCTION retention_truncate('created_at');
CREATE TRIGGER retention_trade_no_truncate BEFORE TRUNCATE ON orders_trade
    FOR EACH STATEMENT EXECUTE FUNCTION retention_truncate('executed_at');
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS retention_order_no_delete ON orders_order;
DROP TRIGGER IF EXISTS retention_orderevent_no_delete ON orders_orderevent;
DROP TRIGGER IF EXISTS retention_trade_no_delete ON orders_trade;
DROP TRIGGER IF EXISTS retention_order_no_truncate ON orders_order;
DROP TRIGGER IF EXISTS retention_orderevent_no_truncate ON orders_orderevent;
DROP TRIGGER IF EXISTS retention_trade_no_truncate ON orders_trade;
DROP FUNCTION IF EXISTS retention_order_delete();
DROP FUNCTION IF EXISTS retention_orderevent_delete();
DROP FUNCTION IF EXISTS retention_trade_delete();
DROP FUNCTION IF EXISTS retention_truncate();
DROP FUNCTION IF EXISTS retention_check_delete(text, bigint, timestamptz, bigint);
"""


def _sqlite_trigger(name: str, table: str, at: str, account: str) -> str:
    # strftime gives the cutoff as UTC text comparable with Django's stored datetimes.
    years = "(SELECT years FROM retention_policy WHERE id = 1)"
    # Every name here is one of this module's literals, never input.
    held = f"EXISTS (SELECT 1 FROM retention_legalhold h JOIN brokers_brokeraccount a ON a.organisation_id = h.organisation_id WHERE a.id = {account} AND h.active)"  # noqa: S608
    return f"""CREATE TRIGGER {name} BEFORE DELETE ON {table}
    WHEN {years} IS NULL
      OR OLD.{at} > strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || {years} || ' years')
      OR {held}
    BEGIN SELECT RAISE(ABORT, 'retention: deleting from {table} is refused: the row is inside the retention window or under legal hold'); END"""  # noqa: S608


SQLITE_FORWARD = [
    _sqlite_trigger("retention_order_no_delete", "orders_order", "created_at", "OLD.account_id"),
    _sqlite_trigger(
        "retention_orderevent_no_delete",
        "orders_orderevent",
        "created_at",
        "(SELECT account_id FROM orders_order WHERE id = OLD.order_id)",
    ),
    _sqlite_trigger("retention_trade_no_delete", "orders_trade", "executed_at", "OLD.account_id"),
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS retention_order_no_delete",
    "DROP TRIGGER IF EXISTS retention_orderevent_no_delete",
    "DROP TRIGGER IF EXISTS retention_trade_no_delete",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise NotImplementedError(f"no retention triggers for {schema_editor.connection.vendor}")
        for sql in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(sql, params=None)  # None: the % in RAISE and strftime are not placeholders

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0001_initial"),
        ("orders", "0006_gtt_placement"),
        ("brokers", "0010_brokerinstrument_listed_at_index"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
