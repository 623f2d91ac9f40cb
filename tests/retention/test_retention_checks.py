"""RETENTION_YEARS below 5 refuses to start; a database enforcing another window warns until synced."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from retention.checks import retention_policy_row, retention_window
from retention.models import RetentionPolicy

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("years", [0, 4])
def test_a_window_below_five_years_is_a_system_check_error(settings, years):
    settings.RETENTION_YEARS = years
    (error,) = retention_window()
    assert error.id == "retention.E001" and error.is_serious()


def test_the_default_window_passes(settings):
    assert settings.RETENTION_YEARS == 7
    assert retention_window() == []
    assert retention_policy_row(databases=["default"]) == []


def test_a_changed_setting_warns_until_the_policy_row_is_synced(settings, capsys):
    settings.RETENTION_YEARS = 10
    (warning,) = retention_policy_row(databases=["default"])
    assert warning.id == "retention.W001"
    call_command("retention_policy")
    assert "retention window: 10 years (was 7)" in capsys.readouterr().out
    assert RetentionPolicy.objects.get().years == 10
    assert retention_policy_row(databases=["default"]) == []


def test_a_missing_retention_trigger_is_a_system_check_error():
    from django.db import connection, transaction

    from retention.checks import retention_triggers

    assert retention_triggers(databases=["default"]) == []
    with transaction.atomic():
        with connection.cursor() as cursor:
            suffix = " ON orders_trade" if connection.vendor == "postgresql" else ""
            cursor.execute(f"DROP TRIGGER retention_trade_no_delete{suffix}")
        (error,) = retention_triggers(databases=["default"])
        assert error.id == "retention.E002" and "retention_trade_no_delete" in error.msg
        transaction.set_rollback(True)
    assert retention_triggers(databases=["default"]) == []
