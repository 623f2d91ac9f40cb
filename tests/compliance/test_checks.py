import pytest
from django.db import connection

from audit.checks import check_audit_triggers, check_checkpoint_storage

pytestmark = pytest.mark.django_db


def test_the_migrated_database_has_its_append_only_triggers():
    assert check_audit_triggers(None, databases=["default"]) == []


@pytest.mark.postgres
def test_a_disabled_trigger_is_reported():
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent DISABLE TRIGGER compliance_auditevent_no_truncate")
    (error,) = check_audit_triggers(None, databases=["default"])
    assert error.id == "compliance.E002" and "compliance_auditevent_no_truncate" in error.msg


def test_an_unusable_checkpoint_storage_is_reported(settings):
    settings.STORAGES = {**settings.STORAGES, "audit_checkpoints": {"BACKEND": "no.such.Storage"}}
    (error,) = check_checkpoint_storage(None)
    assert error.id == "compliance.E001"
