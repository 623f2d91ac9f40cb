"""Let the test runner's flush empty the append-only audit table and the retained order tables.

Django resets the database after each transactional test (``TransactionTestCase``) with a flush:
TRUNCATE on PostgreSQL, DELETE on SQLite. The audit table's triggers reject both, as they must, and so
do the retention triggers on orders, order events and trades (rows a test just made are inside the
window). Rather than weaken the triggers for everyone, only the test flush goes around them:

- PostgreSQL: the flush runs with ``SET LOCAL session_replication_role = replica``, under which
  ordinary triggers do not fire. Only a superuser may set it (the test database user is one); the
  production role cannot (deploy/postgres/), so this opens no door there.
- SQLite: the flush drops those tables' triggers, deletes, and re-creates them from the exact SQL
  stored in sqlite_master, all in the flush's own transaction.

The triggers therefore stay in force everywhere else in the suite, including in transactional tests.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

from django.db import connections

AUDIT_TABLE = "compliance_auditevent"
# Tables whose triggers refuse the flush: the audit trail and the retained tables (retention.policy).
GUARDED_TABLES = (AUDIT_TABLE, "orders_order", "orders_orderevent", "orders_trade")


def _flush_wrapper(original: Callable) -> Callable:
    def execute_sql_flush(self, sql_list):
        if not any(table in sql for table in GUARDED_TABLES for sql in sql_list):
            return original(self, sql_list)
        if self.connection.vendor == "postgresql":
            return original(self, ["SET LOCAL session_replication_role = replica", *sql_list])
        if self.connection.vendor == "sqlite":
            with self.connection.cursor() as cursor:
                marks = ", ".join(["%s"] * len(GUARDED_TABLES))
                cursor.execute(
                    f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks})",
                    list(GUARDED_TABLES),
                )
                triggers = cursor.fetchall()
            drops = [f'DROP TRIGGER "{name}"' for name, _ in triggers]
            return original(self, [*drops, *sql_list, *(sql for _, sql in triggers)])
        return original(self, sql_list)

    execute_sql_flush.__wrapped__ = original
    return execute_sql_flush


@contextmanager
def flush_through_audit_triggers():
    """Patch every configured connection's flush for the duration of the block."""
    patched = []
    for connection in connections.all():
        ops_class = type(connection.ops)
        if ops_class in {cls for cls, _ in patched}:
            continue
        original = ops_class.execute_sql_flush
        ops_class.execute_sql_flush = _flush_wrapper(original)
        patched.append((ops_class, original))
    try:
        yield
    finally:
        for ops_class, original in patched:
            ops_class.execute_sql_flush = original
