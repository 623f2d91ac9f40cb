"""Keyed audit links, appended only through SECURITY DEFINER functions, to a fixed range of chains.

Until now the application's role could INSERT into ``compliance_auditevent`` and every link was plain
SHA-256, so anyone holding the application's database credentials could append a row with a correctly
recomputed hash. From here on:

- each row's hash is an HMAC under a key from ``AUDIT_HMAC_KEYS`` that the database never sees, and
  the row names the key (``key_id``). The application computes the link; rows written before this
  migration keep their plain SHA-256 links and an empty ``key_id``;
- the application appends only through two functions that run as their owner (SECURITY DEFINER, with
  a pinned ``search_path``) and still serialise each chain: ``compliance_audit_insert`` takes the
  chain's transaction-scoped advisory lock, reads the chain's newest event and inserts the new one only
  if it is that event's successor (the given sequence and previous hash); otherwise it inserts nothing
  and returns NULL. ``compliance_audit_head`` picks and locks a chain (the connection's last one
  first, then any free one) and returns its newest event, for the application to link to. Both hold
  the lock until the transaction ends, so a chain never forks and never skips a number;
- both refuse chains outside ``compliance_audit_chain_limit()``, a function owned by the schema owner
  (so the application cannot change it), set here from ``AUDIT_CHAINS`` and later by
  ``manage.py audit_chains``.

EXECUTE on the functions is revoked from PUBLIC; deploy/postgres/app_role.sql grants the application
role EXECUTE on the two append functions and SELECT on the table, nothing else. The old
``compliance_audit_append`` (SECURITY INVOKER, computing an unkeyed link in SQL) is dropped.

The SQL is written out here, not imported, so that this migration keeps meaning what it meant when it
ran. ``audit.checks`` holds the digests of these definitions and reports any change. SQLite has
no stored functions or roles: it appends in Python under its single write lock, to chain 1.
"""

from importlib import import_module

from django.conf import settings
from django.db import migrations, models

FUNCTIONS = r"""
CREATE FUNCTION compliance_audit_chain_limit() RETURNS integer
    LANGUAGE sql STABLE AS $$ SELECT {chains} $$;

CREATE FUNCTION compliance_audit_head(
    p_preferred integer, OUT o_chain integer, OUT o_seq bigint, OUT o_hash text
) LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    v_chains integer := compliance_audit_chain_limit();
    v_start integer;
    v_try integer;
BEGIN
    -- A chain is held by a transaction-scoped advisory lock on (1635083369, chain); the number is
    -- "audi" in ASCII. First choice: a chain no other transaction holds, the preferred one first (a
    -- lock this transaction already holds is granted again, so one transaction's events stay in one
    -- chain and it never holds two), then the others from a random start.
    v_start := floor(random() * v_chains)::integer;
    FOR i IN 0..v_chains LOOP
        v_try := CASE WHEN i = 0 THEN p_preferred ELSE (v_start + i) % v_chains + 1 END;
        CONTINUE WHEN v_try IS NULL OR v_try < 1 OR v_try > v_chains;
        IF pg_try_advisory_xact_lock(1635083369, v_try) THEN
            o_chain := v_try;
            EXIT;
        END IF;
    END LOOP;
    IF o_chain IS NULL THEN
        -- Every chain is busy: wait for the one this connection maps to.
        o_chain := (pg_backend_pid() % v_chains) + 1;
        PERFORM pg_advisory_xact_lock(1635083369, o_chain);
    END IF;
    SELECT e.seq, e.hash INTO o_seq, o_hash
    FROM compliance_auditevent AS e
    WHERE e.chain = o_chain
    ORDER BY e.seq DESC
    LIMIT 1;
    o_seq := COALESCE(o_seq, 0);
    o_hash := COALESCE(o_hash, repeat('0', 64));
END;
$$;

CREATE FUNCTION compliance_audit_insert(
    p_chain integer, p_seq bigint, p_prev_hash text, p_hash text, p_key_id text,
    p_created_at timestamptz, p_actor text, p_actor_name text, p_action text,
    p_target_type text, p_target_id text, p_payload text, p_ip text, p_request_id text
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    v_chains integer := compliance_audit_chain_limit();
    v_seq bigint;
    v_hash text;
    v_id bigint;
BEGIN
    IF p_chain IS NULL OR p_chain < 1 OR p_chain > v_chains THEN
        RAISE EXCEPTION 'audit chain % is outside the configured chains 1..%', p_chain, v_chains
            USING ERRCODE = 'ZA002';
    END IF;
    IF p_key_id IS NULL OR p_key_id !~ '^[A-Za-z][A-Za-z0-9_]{{0,15}}$'
            OR p_hash IS NULL OR p_hash !~ '^[0-9a-f]{{64}}$' THEN
        RAISE EXCEPTION 'an audit event needs a key id and a keyed link hash (64 hex digits)'
            USING ERRCODE = 'ZA002';
    END IF;
    -- Another transaction holds the chain: insert nothing, the caller asks compliance_audit_head.
    IF NOT pg_try_advisory_xact_lock(1635083369, p_chain) THEN
        RETURN NULL;
    END IF;
    -- The chain's newest event, committed (the previous holder of the lock committed before releasing
    -- it, and each statement here takes a fresh snapshot) or this transaction's own. Under REPEATABLE
    -- READ the snapshot may be older: the insert then fails on the (chain, seq) unique constraint.
    SELECT e.seq, e.hash INTO v_seq, v_hash
    FROM compliance_auditevent AS e
    WHERE e.chain = p_chain
    ORDER BY e.seq DESC
    LIMIT 1;
    -- Only the newest event's successor is appended: the chain has moved on since the caller read it
    -- (or never was where the caller says), so insert nothing.
    IF p_seq IS DISTINCT FROM COALESCE(v_seq, 0) + 1
            OR p_prev_hash IS DISTINCT FROM COALESCE(v_hash, repeat('0', 64)) THEN
        RETURN NULL;
    END IF;
    INSERT INTO compliance_auditevent
        (chain, seq, prev_hash, hash, key_id, created_at, actor, actor_name, action, target_type,
         target_id, payload, ip, request_id)
    VALUES
        (p_chain, p_seq, p_prev_hash, p_hash, p_key_id, p_created_at, p_actor, p_actor_name, p_action,
         p_target_type, p_target_id, p_payload, p_ip, p_request_id)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

REVOKE ALL ON FUNCTION compliance_audit_chain_limit() FROM PUBLIC;
REVOKE ALL ON FUNCTION compliance_audit_head(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION compliance_audit_insert(
    integer, bigint, text, text, text, timestamptz, text, text, text, text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION compliance_auditevent_reject_change() FROM PUBLIC;
DROP FUNCTION compliance_audit_append(
    text, integer, integer, timestamptz, text, text, text, text, text, text, text, text);
"""
BACKWARD = """
DROP FUNCTION compliance_audit_insert(
    integer, bigint, text, text, text, timestamptz, text, text, text, text, text, text, text, text);
DROP FUNCTION compliance_audit_head(integer);
DROP FUNCTION compliance_audit_chain_limit();
"""

# SQLite rebuilds the table to add a NOT NULL column (and to drop it again), which drops its triggers:
# they are created again after each rebuild (the statements of migration 0002).
SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS compliance_auditevent_no_update BEFORE UPDATE ON compliance_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE on compliance_auditevent is not allowed'); END""",
    """CREATE TRIGGER IF NOT EXISTS compliance_auditevent_no_delete BEFORE DELETE ON compliance_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE on compliance_auditevent is not allowed'); END""",
]


def sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_TRIGGERS:
            schema_editor.execute(sql, params=None)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        sqlite_triggers(apps, schema_editor)
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(current_schema())")
        (schema,) = cursor.fetchone()
    sql = FUNCTIONS.format(chains=int(settings.AUDIT_CHAINS), schema=schema)
    schema_editor.execute(sql, params=None)  # None: the % in RAISE is not a placeholder


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(BACKWARD, params=None)
    previous = import_module("audit.migrations.0004_audit_append_function")
    schema_editor.execute(previous.FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_audit_append_function")]

    operations = [
        # Backwards only: after the rebuild that drops key_id again.
        migrations.RunPython(migrations.RunPython.noop, sqlite_triggers),
        # PostgreSQL adds the column with a constant default without rewriting or updating a row.
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Which AUDIT_HMAC_KEYS key linked the row; empty for plain SHA-256 links from before keyed ones.",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(
                help_text="HMAC-SHA-256 (hex) over prev_hash, chain, seq and this row.", max_length=64
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
