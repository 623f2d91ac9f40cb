-- The database role the application runs as: ordinary read/write on the domain tables, but on the
-- audit trail only INSERT and SELECT, so that even a compromised application cannot alter, delete or
-- truncate audit events (the triggers from compliance migration 0002 stop the schema owner too).
--
-- Run it as the role that owns the schema (the one that runs `manage.py migrate`), after migrating:
--
--   psql "postgres://owner@db:5432/terminal" -v app_role=terminal_app -v app_password='...' \
--        -f deploy/postgres/app_role.sql
--
-- app_password is optional (omit it to manage the password elsewhere). The script is idempotent:
-- run it again after every deployment that adds tables. The application then connects as app_role;
-- migrations keep running as the owner. Never make app_role a superuser or give it BYPASSRLS: a
-- superuser can set session_replication_role and disable triggers.

\set ON_ERROR_STOP on
\if :{?app_role}
\else
  \echo 'usage: psql ... -v app_role=NAME [-v app_password=SECRET] -f deploy/postgres/app_role.sql'
  \quit
\endif

SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
\if :{?app_password}
ALTER ROLE :"app_role" PASSWORD :'app_password';
\endif

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'app_role') \gexec
GRANT USAGE ON SCHEMA public TO :"app_role";

-- Everything the application reads and writes, now and (default privileges) in later migrations.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The audit trail: append and read, nothing else. Appends go through the function
-- compliance_audit_append (SECURITY INVOKER, executable by PUBLIC), so they need exactly this.
REVOKE ALL ON compliance_auditevent FROM PUBLIC;
REVOKE ALL ON compliance_auditevent FROM :"app_role";
GRANT SELECT, INSERT ON compliance_auditevent TO :"app_role";
-- No TRUNCATE anywhere: it bypasses row triggers and the flush of a test runner is the only user.
REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM :"app_role";
