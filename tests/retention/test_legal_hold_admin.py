"""Platform staff set and lift legal holds in the admin, audited; nobody else can, nobody deletes one.
Deleting an organisation or a user with retained orders gives the admin's clear refusal, never a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import Organisation, User
from audit.models import AuditEvent
from retention.errors import RetentionError
from retention.models import LegalHold
from retention.services.holds import legal_hold_set
from tests.retention.book import Book, years_ago

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, otp_login):
    root = User.objects.create_superuser("root", "root@example.com", "x-long-password-1")
    return otp_login(client, root), root


def test_platform_staff_set_and_lift_a_hold_and_each_change_is_audited(staff):
    client, root = staff
    book = Book()
    add = client.post(
        reverse("admin:retention_legalhold_add"), {"organisation": book.org.pk, "active": "on", "reason": "SEBI 1"}
    )
    assert add.status_code == 302
    hold = LegalHold.objects.get()
    assert hold.active and hold.changed_by == root
    change = client.post(reverse("admin:retention_legalhold_change", args=[hold.pk]), {"reason": "closed"})
    assert change.status_code == 302
    hold.refresh_from_db()
    assert not hold.active and hold.reason == "closed"
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "target_id"))
    assert actions == [("retention.legal_hold_on", str(book.org.pk)), ("retention.legal_hold_off", str(book.org.pk))]
    assert client.post(reverse("admin:retention_legalhold_delete", args=[hold.pk]), {"post": "yes"}).status_code == 403
    assert LegalHold.objects.exists()


def test_staff_who_are_not_platform_staff_cannot_reach_holds(client, otp_login):
    clerk = User.objects.create_user("clerk", password="x-long-password-1", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(content_type__app_label="retention"))
    otp_login(client, clerk)
    assert client.get(reverse("admin:retention_legalhold_changelist")).status_code == 403
    assert client.post(reverse("admin:retention_legalhold_add"), {"reason": "x"}).status_code == 403
    with pytest.raises(RetentionError, match="platform staff"):
        legal_hold_set(actor=clerk, organisation=Book().org, active=True, reason="x")


@pytest.mark.parametrize("reason", ["", "   ", "a\x00b", "x" * 301])
def test_a_hold_needs_a_reason(reason, staff):
    _, root = staff
    with pytest.raises(RetentionError) as caught:
        legal_hold_set(actor=root, organisation=Book().org, active=True, reason=reason)
    assert caught.value.code == "legal_hold_reason"
    assert not LegalHold.objects.exists() and not AuditEvent.objects.exists()


def test_deleting_an_organisation_or_user_with_retained_orders_is_refused_clearly(staff):
    client, _ = staff
    book = Book()
    book.order(years_ago(1))
    page = client.post(reverse("admin:accounts_organisation_delete", args=[book.org.pk]), {"post": "yes"})
    assert page.status_code == 200 and "Cannot delete" in page.text
    assert Organisation.objects.filter(pk=book.org.pk).exists()
    page = client.post(reverse("admin:accounts_user_delete", args=[book.user.pk]), {"post": "yes"})
    assert page.status_code == 200 and "Cannot delete" in page.text
    assert User.objects.filter(pk=book.user.pk).exists()


@pytest.mark.parametrize("reason", ["   ", "x" * 301])
def test_the_admin_form_refuses_a_bad_reason_in_the_form(staff, reason):
    client, _ = staff
    book = Book()
    page = client.post(
        reverse("admin:retention_legalhold_add"), {"organisation": book.org.pk, "active": "on", "reason": reason}
    )
    assert page.status_code == 200 and page.context["adminform"].form.errors["reason"]
    assert not LegalHold.objects.exists() and not AuditEvent.objects.exists()
