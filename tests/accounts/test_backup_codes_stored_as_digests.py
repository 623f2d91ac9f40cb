"""Backup codes are stored as one-way digests; a code is checked by its digest through StaticDevice."""

import re

import pytest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.otp import backup_code_digest, backup_codes_issue, otp_check
from audit.models import AuditEvent

from .conftest import make_user

pytestmark = pytest.mark.django_db


def _stored(device: StaticDevice) -> set[str]:
    return set(device.token_set.values_list("token", flat=True))


def test_issued_codes_are_stored_only_as_digests_salted_by_the_device():
    alice, bob = make_user("alice"), make_user("bob")
    codes = backup_codes_issue(user=alice)
    device = StaticDevice.objects.get(user=alice)
    assert len(set(codes)) == 10 and all(re.fullmatch(r"[a-z2-7]{16}", code) for code in codes)
    stored = _stored(device)
    assert stored == {backup_code_digest(device_id=device.pk, code=code) for code in codes}
    assert not stored & set(codes) and all(re.fullmatch(r"[A-Z2-7]{16}", token) for token in stored)
    other = StaticDevice.objects.create(user=bob, name="backup", confirmed=True)
    assert backup_code_digest(device_id=other.pk, code=codes[0]) != backup_code_digest(
        device_id=device.pk, code=codes[0]
    )


def test_a_fresh_code_verifies_once_and_only_once():
    user = make_user("alice")
    codes = backup_codes_issue(user=user)
    device = otp_check(user=user, token=codes[3])
    assert isinstance(device, StaticDevice) and device.user == user
    assert _stored(device) == {backup_code_digest(device_id=device.pk, code=code) for code in codes if code != codes[3]}
    assert otp_check(user=user, token=codes[3]) is None
    device.refresh_from_db()
    device.throttle_reset()  # the refusal throttles the device for a second
    assert otp_check(user=user, token=codes[4]) == device


def test_a_code_typed_with_spaces_or_in_capitals_verifies():
    user = make_user("alice")
    codes = backup_codes_issue(user=user)
    assert otp_check(user=user, token=f" {codes[0][:4]} {codes[0][4:8]}\t{codes[0][8:]} ") is not None
    # The codes are lower-case base32: a code read out and typed in capitals is the same code.
    assert otp_check(user=user, token=codes[1].upper()) is not None
    assert len(_stored(StaticDevice.objects.get(user=user))) == 8


def test_a_wrong_code_fails_is_audited_and_throttles_the_backup_device_only():
    user = make_user("alice")
    backup_codes_issue(user=user)
    assert otp_check(user=user, token="abcdefghijklmnop") is None
    event = AuditEvent.objects.get(action="auth.otp_failed")
    assert event.actor == f"user:{user.pk}" and event.payload_data == {"channel": "web", "kind": "backup"}
    device = StaticDevice.objects.get(user=user)
    assert device.throttling_failure_count == 1 and len(_stored(device)) == 10
    assert TOTPDevice.objects.get(user=user).throttling_failure_count == 0


def test_a_stored_digest_typed_as_a_code_is_refused():
    user = make_user("alice")
    backup_codes_issue(user=user)
    device = StaticDevice.objects.get(user=user)
    leaked = device.token_set.first().token
    assert otp_check(user=user, token=leaked) is None
    assert otp_check(user=user, token=leaked.lower()) is None
    assert len(_stored(device)) == 10


def test_a_plaintext_code_left_by_an_earlier_release_is_hashed_on_first_use_and_verifies():
    user = make_user("alice")
    device = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    # As a release from before the digests stores them, while both share the database.
    device.token_set.create(token="abcdefghijklmnop")
    device.token_set.create(token="qrstuvwxyz234567")
    assert otp_check(user=user, token="abcd efgh ijkl mnop") == device
    assert _stored(device) == {backup_code_digest(device_id=device.pk, code="qrstuvwxyz234567")}
    assert otp_check(user=user, token="abcdefghijklmnop") is None
