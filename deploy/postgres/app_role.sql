-- The database role the application runs as: ordinary read/write on the domain tables, but on the
-- audit trail only SELECT and EXECUTE on its two append functions, so that even someone holding the
-- application's credentials cannot insert, alter, delete or truncate audit events, or switch off the
-- triggers that stop that.
--
-- Two roles, never one:
-- - the owner role runs `manage.py migrate` and so owns every table, the audit triggers and the
--   functions of compliance migrations 0002 and 0005. It is not a superuser. An owner can do anything
--   to what it owns, including `ALTER TABLE ... DISABLE TRIGGER USER` and replacing a trigger
--   function, so its credentials belong to the deploy pipeline only;
-- - the application role (app_role) connects at run time. It must not be a superuser and must not be
--   able to become the owner (no membership in it): this script refuses such a role. It appends to
--   the audit table only through compliance_audit_head / compliance_audit_insert, which run as the
--   owner (SECURITY DEFINER, with a pinned search_path) and append nothing but the chain's successor.
--
-- Run it as the owner role, after migrating (the owner needs CREATEROLE to create app_role, or create
-- app_role beforehand):
--
--   psql "postgres://owner@db:5432/terminal" -v app_role=terminal_app -v app_password='...' \
--        -f deploy/postgres/app_role.sql
--
-- app_password is optional (omit it to manage the password elsewhere). The script is idempotent:
-- run it again after every deployment that adds tables or functions. Never make app_role a superuser
-- or give it BYPASSRLS: a superuser can set session_replication_role and disable triggers.

\set ON_ERROR_STOP on
\if :{?app_role}
\else
  \echo 'usage: psql ... -v app_role=NAME [-v app_password=SECRET] -f deploy/postgres/app_role.sql'
  \quit
\endif

-- Refuse an application role that is a superuser or can act as the owner of the audit trail: with
-- it the database could not stop the application from disabling the audit triggers.
SELECT set_config('terminal.app_role', :'app_role', false);
DO $$
DECLARE
    v_role text := current_setting('terminal.app_role');
    v_owner regrole;
BEGIN
    IF to_regclass('compliance_auditevent') IS NULL THEN
        RAISE EXCEPTION 'compliance_auditevent does not exist: run manage.py migrate (as the owner) first';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
        RETURN;
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = v_role) THEN
        RAISE EXCEPTION 'the application role % is a superuser; give the application a role of its own', v_role;
    END IF;
    FOR v_owner IN
        SELECT relowner::regrole FROM pg_class WHERE oid = 'compliance_auditevent'::regclass
        UNION SELECT proowner::regrole FROM pg_proc
        WHERE proname IN ('compliance_audit_head', 'compliance_audit_insert', 'compliance_audit_chain_limit',
                          'compliance_auditevent_reject_change')
    LOOP
        IF pg_has_role(v_role, v_owner, 'MEMBER') THEN
            RAISE EXCEPTION 'the application role % can act as %, which owns the audit trail (and so can '
                'disable its triggers); migrate as a separate owner role and connect as one that is not a '
                'member of it', v_role, v_owner;
        END IF;
    END LOOP;
END;
$$;

SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
\if :{?app_password}
ALTER ROLE :"app_role" PASSWORD :'app_password';
\endif

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'app_role') \gexec
GRANT USAGE ON SCHEMA public TO :"app_role";
-- It creates nothing: no object of its own could shadow or replace the owner's.
REVOKE CREATE ON SCHEMA public FROM :"app_role";

-- Everything the application reads and writes, now and (default privileges) in later migrations.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The audit trail: read, and append only through the two SECURITY DEFINER functions (compliance
-- migration 0005), which check the chain number and that the event follows the chain's newest one.
REVOKE ALL ON compliance_auditevent FROM PUBLIC;
REVOKE ALL ON compliance_auditevent FROM :"app_role";
GRANT SELECT ON compliance_auditevent TO :"app_role";
SELECT format('REVOKE ALL ON SEQUENCE %s FROM %I', pg_get_serial_sequence('compliance_auditevent', 'id'), :'app_role')
\gexec
REVOKE ALL ON FUNCTION compliance_audit_chain_limit() FROM PUBLIC;
REVOKE ALL ON FUNCTION compliance_audit_chain_limit() FROM :"app_role";
REVOKE ALL ON FUNCTION compliance_audit_head(integer), compliance_audit_insert(
    integer, bigint, text, text, text, timestamptz, text, text, text, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compliance_audit_head(integer), compliance_audit_insert(
    integer, bigint, text, text, text, timestamptz, text, text, text, text, text, text, text, text) TO :"app_role";
-- Retention (retention migration 0002): the window the triggers enforce is read from retention_policy,
-- written only by the owner (migrate, manage.py retention_policy). The application reads it; it may
-- set and lift legal holds (retention_legalhold, audited by the application) but not remove them.
REVOKE ALL ON retention_policy FROM PUBLIC;
REVOKE ALL ON retention_policy FROM :"app_role";
GRANT SELECT ON retention_policy TO :"app_role";
REVOKE DELETE ON retention_legalhold FROM :"app_role";

-- No TRUNCATE anywhere: it bypasses row triggers and the flush of a test runner is the only user.
REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM :"app_role";
