"""deploy/postgres/app_role.sql gives the application role SELECT on the audit table and EXECUTE on its
append functions, nothing else (the attacks with these rights are in test_audit_tamper.py)."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _as_role(role: str, sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{role}"')
        cursor.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE compliance_auditevent SET actor = 'someone:else'",
        "DELETE FROM compliance_auditevent",
        "TRUNCATE compliance_auditevent",
    ],
)
def test_the_app_role_cannot_update_delete_or_truncate_audit_events(app_role, sql):
    audit_record(actor=None, action="order.placed", payload={})
    with pytest.raises(DatabaseError) as caught:
        _as_role(app_role, sql)
    assert caught.value.__cause__.sqlstate == "42501"  # insufficient_privilege, before any trigger
    assert "permission denied" in str(caught.value)
    assert AuditEvent.objects.count() == 1


def test_the_app_role_can_append_and_read_audit_events(app_role):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        event = audit_record(actor="system:rms", action="rms.rejected", payload={"reason": "limit"})
        cursor.execute("SELECT count(*) FROM compliance_auditevent")
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (app_role,)
    assert AuditEvent.objects.get().hash == event.hash


def test_the_app_role_cannot_switch_the_triggers_off(app_role):
    with pytest.raises(DatabaseError) as caught:
        _as_role(app_role, "SET session_replication_role = replica")
    assert caught.value.__cause__.sqlstate == "42501"
