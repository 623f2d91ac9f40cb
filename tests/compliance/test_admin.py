import pytest
from django.urls import reverse

from accounts.models import User
from audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client, otp_login):
    admin = User.objects.create_superuser("root", "root@example.com", "x-long-password-1")
    return otp_login(client, admin)  # the admin needs both factors


def test_a_superuser_sees_events_filtered_by_actor_action_and_date(superuser_client):
    audit_record(actor="system:rms", action="rms.rejected", payload={"reason": "kill_switch"})
    audit_record(actor=None, action="order.placed", payload={})
    url = reverse("admin:compliance_auditevent_changelist")
    page = superuser_client.get(url)
    assert page.status_code == 200
    assert "rms.rejected" in page.text and "order.placed" in page.text
    filtered = superuser_client.get(
        url, {"action": "rms.rejected", "actor": "system:rms", "created_at__gte": "2000-01-01 00:00:00+00:00"}
    )
    assert filtered.status_code == 200
    assert [event.action for event in filtered.context["cl"].result_list] == ["rms.rejected"]
    assert reverse("admin:compliance_auditevent_add") not in page.text


def test_a_superuser_can_open_an_event_but_not_add_change_or_delete_one(superuser_client):
    event = audit_record(actor=None, action="order.placed", payload={"qty": 1})
    change = reverse("admin:compliance_auditevent_change", args=[event.pk])
    detail = superuser_client.get(change)
    assert detail.status_code == 200 and "order.placed" in detail.text
    assert superuser_client.get(reverse("admin:compliance_auditevent_add")).status_code == 403
    assert superuser_client.post(change, {"action": "order.cancelled"}).status_code == 403
    delete = reverse("admin:compliance_auditevent_delete", args=[event.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = superuser_client.post(
        reverse("admin:compliance_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code == 200  # the action is not offered, so nothing happens
    event.refresh_from_db()
    assert event.action == "order.placed"
