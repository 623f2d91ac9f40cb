"""The admin shows a device's backup codes as their digests and cannot add or edit one."""

import pytest
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice

from accounts.otp import backup_codes_issue

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db


def _superuser_client():
    staff = make_user("staff")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    return verified_client(staff)


def test_the_admin_shows_digests_never_the_codes_and_offers_no_way_to_add_one():
    client = _superuser_client()
    codes = backup_codes_issue(user=make_user("alice"))
    device = StaticDevice.objects.get(user__username="alice")
    page = client.get(reverse("admin:otp_static_staticdevice_change", args=[device.pk])).content.decode()
    assert all(token in page for token in device.token_set.values_list("token", flat=True))
    assert not any(code in page for code in codes)
    assert 'name="token_set-0-token"' not in page and 'name="token_set-MAX_NUM_FORMS" value="0"' in page
    assert 'name="token_set-0-DELETE"' in page  # an admin may still revoke a code


def test_a_code_posted_to_the_admin_by_hand_is_not_stored():
    client = _superuser_client()
    device = StaticDevice.objects.create(user=make_user("alice"), name="backup", confirmed=True)
    response = client.post(
        reverse("admin:otp_static_staticdevice_change", args=[device.pk]),
        {
            "user": device.user_id,
            "name": "backup",
            "confirmed": "on",
            "token_set-TOTAL_FORMS": "1",
            "token_set-INITIAL_FORMS": "0",
            "token_set-MIN_NUM_FORMS": "0",
            "token_set-MAX_NUM_FORMS": "1000",
            "token_set-0-device": str(device.pk),
            "token_set-0-token": "chosenbyhand2222",
        },
    )
    assert response.status_code == 302
    assert not device.token_set.exists()


def test_an_admin_can_still_revoke_a_code():
    client = _superuser_client()
    backup_codes_issue(user=make_user("alice"))
    device = StaticDevice.objects.get(user__username="alice")
    tokens = list(device.token_set.order_by("pk"))
    data = {
        "user": device.user_id,
        "name": "backup",
        "confirmed": "on",
        "token_set-TOTAL_FORMS": str(len(tokens)),
        "token_set-INITIAL_FORMS": str(len(tokens)),
        "token_set-MIN_NUM_FORMS": "0",
        "token_set-MAX_NUM_FORMS": "0",
    }
    for index, token in enumerate(tokens):
        data[f"token_set-{index}-id"] = str(token.pk)
        data[f"token_set-{index}-device"] = str(device.pk)
    data["token_set-0-DELETE"] = "on"
    response = client.post(reverse("admin:otp_static_staticdevice_change", args=[device.pk]), data)
    assert response.status_code == 302
    assert set(device.token_set.values_list("token", flat=True)) == {token.token for token in tokens[1:]}
