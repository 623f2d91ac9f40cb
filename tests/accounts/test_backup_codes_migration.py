"""accounts 0005: plaintext backup codes already handed out become digests and keep working."""

import importlib

import pytest
from django.apps import apps
from django_otp.plugins.otp_static.models import StaticDevice

from accounts import otp
from accounts.otp import backup_code_digest, otp_check

from .conftest import make_user

pytestmark = pytest.mark.django_db

migration = importlib.import_module("accounts.migrations.0005_backup_codes_hashed")


def _device_with_plaintext_codes(username: str, codes: list[str]) -> StaticDevice:
    device = StaticDevice.objects.create(user=make_user(username), name="backup", confirmed=True)
    for code in codes:  # as the release before the migration stored them
        device.token_set.create(token=code)
    return device


def _stored(device: StaticDevice) -> set[str]:
    return set(device.token_set.values_list("token", flat=True))


def test_the_migration_turns_plaintext_codes_into_digests_and_the_old_codes_still_verify():
    alice = _device_with_plaintext_codes("alice", ["abcdefghijklmnop", "qrstuvwxyz234567"])
    bob = _device_with_plaintext_codes("bob", ["bobsoldcode22222", "short"])
    migration.backup_codes_hash(apps, None)
    assert _stored(alice) == {
        backup_code_digest(device_id=alice.pk, code="abcdefghijklmnop"),
        backup_code_digest(device_id=alice.pk, code="qrstuvwxyz234567"),
    }
    assert _stored(bob) == {
        backup_code_digest(device_id=bob.pk, code="bobsoldcode22222"),
        backup_code_digest(device_id=bob.pk, code="short"),
    }
    assert otp_check(user=alice.user, token="qrst uvwx yz23 4567") == alice
    assert _stored(alice) == {backup_code_digest(device_id=alice.pk, code="abcdefghijklmnop")}
    assert otp_check(user=bob.user, token="short") == bob


def test_running_the_migration_again_changes_nothing():
    device = _device_with_plaintext_codes("alice", ["abcdefghijklmnop"])
    migration.backup_codes_hash(apps, None)
    once = _stored(device)
    migration.backup_codes_hash(apps, None)
    assert _stored(device) == once
    assert otp_check(user=device.user, token="abcdefghijklmnop") == device


def test_the_migration_s_frozen_digest_agrees_with_the_live_one():
    for device_id, code in [(1, "abcdefghijklmnop"), (98765, "qrstuvwxyz234567"), (7, "")]:
        assert migration.backup_code_digest(device_id=device_id, code=code) == backup_code_digest(
            device_id=device_id, code=code
        )
    assert migration.DIGEST.pattern == otp._DIGEST.pattern
