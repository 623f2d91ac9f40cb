"""Append audit events through a stored function, and drop the chain-head table.

``compliance_audit_append`` does in one call what ``services._append_postgresql`` did in one or two
SQL statements, and with less work:
- a chain is held by a transaction-scoped advisory lock, kept in memory, instead of a lock on a row
  of ``compliance_auditchainhead`` (taking a row lock, then advancing the row, wrote that row twice
  per event, and every writer touched the same page);
- the chain's next sequence and previous hash come from its newest event, read through the
  (chain, seq) unique index under that lock, so there is no second copy of the chain's end to keep
  in step (and nothing to rebuild after a flush or when AUDIT_CHAINS is raised);
- PL/pgSQL keeps the plans of its statements for the life of the connection, where the same SQL
  sent as a statement was planned on every append.

The previous holder of a chain's lock commits before the lock is released, and each statement of a
volatile function takes a fresh snapshot under READ COMMITTED, so the newest event read is the one
committed last, or one this transaction appended itself. The link hash is the formula of
``audit.chain.link_hash``, in SQL.

The SQL is written out here, not imported, so that this migration keeps meaning what it meant when it
ran. SQLite has no stored functions; it appends in Python under its single write lock.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION compliance_audit_append(
    p_digest text, p_chains integer, p_preferred integer,
    p_created_at timestamptz, p_actor text, p_actor_name text, p_action text,
    p_target_type text, p_target_id text, p_payload text, p_ip text, p_request_id text,
    OUT o_id bigint, OUT o_chain integer, OUT o_seq bigint, OUT o_prev_hash text, OUT o_hash text
) LANGUAGE plpgsql AS $$
DECLARE
    v_chain integer;
    v_start integer;
    v_try integer;
BEGIN
    -- A chain is held by a transaction-scoped advisory lock on (1635083369, chain); the number is
    -- "audi" in ASCII. First choice: a chain no other transaction holds, the one this connection
    -- used last first (a lock this transaction already holds is granted again, so one transaction's
    -- events stay in one chain and it never holds two), then the others from a random start.
    v_start := floor(random() * p_chains)::integer;
    FOR i IN 0..p_chains LOOP
        v_try := CASE WHEN i = 0 THEN p_preferred ELSE (v_start + i) % p_chains + 1 END;
        CONTINUE WHEN v_try < 1 OR v_try > p_chains;
        IF pg_try_advisory_xact_lock(1635083369, v_try) THEN
            v_chain := v_try;
            EXIT;
        END IF;
    END LOOP;
    IF v_chain IS NULL THEN
        -- Every chain is busy: wait for the one this connection maps to.
        v_chain := (pg_backend_pid() % p_chains) + 1;
        PERFORM pg_advisory_xact_lock(1635083369, v_chain);
    END IF;

    -- The chain's newest event, committed (the previous holder of the lock committed before
    -- releasing it, and each statement here takes a fresh snapshot) or this transaction's own.
    -- Under REPEATABLE READ the snapshot may be older: the insert then fails on the (chain, seq)
    -- unique constraint, so a chain can never fork.
    SELECT e.seq, e.hash INTO o_seq, o_prev_hash
    FROM compliance_auditevent AS e
    WHERE e.chain = v_chain
    ORDER BY e.seq DESC
    LIMIT 1;
    o_seq := COALESCE(o_seq, 0) + 1;
    o_prev_hash := COALESCE(o_prev_hash, repeat('0', 64));
    o_hash := encode(sha256(convert_to(
        o_prev_hash || '|' || v_chain::text || '|' || o_seq::text || '|' || p_digest, 'UTF8')), 'hex');

    o_chain := v_chain;
    INSERT INTO compliance_auditevent
        (chain, seq, prev_hash, hash, created_at, actor, actor_name, action, target_type, target_id,
         payload, ip, request_id)
    VALUES
        (v_chain, o_seq, o_prev_hash, o_hash, p_created_at, p_actor, p_actor_name, p_action,
         p_target_type, p_target_id, p_payload, p_ip, p_request_id)
    RETURNING id INTO o_id;
END;
$$;
"""
BACKWARD = """
DROP FUNCTION IF EXISTS compliance_audit_append(
    text, integer, integer, timestamptz, text, text, text, text, text, text, text, text);
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # None: the % in the function body is not a placeholder

    return run


class Migration(migrations.Migration):
    dependencies = [("compliance", "0003_view_reports_permission")]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(BACKWARD)),
        migrations.DeleteModel(name="AuditChainHead"),
    ]
