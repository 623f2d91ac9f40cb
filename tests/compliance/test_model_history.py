import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from accounts.models import User
from audit.history import track_history, tracked_models

pytestmark = pytest.mark.django_db


def test_user_changes_are_recorded_field_by_field_with_the_password_masked():
    user = User.objects.create_user("dave", email="old@example.com", password="x-long-password-1")
    user.email = "new@example.com"
    user.set_password("x-long-password-2")
    user.save()
    entry = LogEntry.objects.get_for_object(user).filter(action=LogEntry.Action.UPDATE).get()
    changes = entry.changes_dict
    assert changes["email"] == ["old@example.com", "new@example.com"]
    assert "x-long-password" not in str(changes["password"])
    assert "pbkdf2" not in str(changes["password"]) and "argon2" not in str(changes["password"])


def test_an_admin_sees_a_users_history_in_the_django_admin(client, otp_login):
    admin = User.objects.create_superuser("root", "root@example.com", "x-long-password-1")
    otp_login(client, admin)  # the admin needs both factors
    user = User.objects.create_user("erin", password="x-long-password-1")
    client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        {
            "username": "erin",
            "first_name": "Erin",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "09:00:00",
        },
    )
    entry = LogEntry.objects.get_for_object(user).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == admin
    page = client.get(reverse("admin:auditlog_logentry_changelist"))
    assert page.status_code == 200 and "erin" in page.text


def test_tracking_a_model_twice_is_harmless():
    track_history(User, mask_fields=["password"])
    assert tracked_models().count("accounts.User") == 1
