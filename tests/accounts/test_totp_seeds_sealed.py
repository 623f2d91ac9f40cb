"""TOTP seeds are stored sealed (accounts.models.SealedTOTPDevice), bound to their row and rotated with the keys."""

import importlib
import io
import logging
import os
import re
from base64 import b32decode, b32encode

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.checks import check_totp_seed_fits
from accounts.models import SealedTOTPDevice
from accounts.otp import otp_check
from infra.key_rotation import NOT_SEALED, key_usage

from .conftest import PASSWORD, make_user, totp_code, verified_client

pytestmark = pytest.mark.django_db

migration = importlib.import_module("accounts.migrations.0006_totp_seeds_sealed")
VERIFY = "/account/otp/verify/"


def _stored_key(device_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice WHERE id = %s", [device_id])
        return cursor.fetchone()[0]


def _set_stored_key(device_id: int, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE otp_totp_totpdevice SET key = %s WHERE id = %s", [key, device_id])


def _code(seed: bytes) -> str:
    return f"{TOTP(seed).token():06d}"


def _password_login(username: str) -> Client:
    client = Client()
    assert client.post("/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


def _seed_forms(seed: bytes) -> list[str]:
    b32 = b32encode(seed).decode()
    return [seed.hex(), seed.hex().upper(), b32, b32.lower(), b32.rstrip("=")]


@pytest.fixture
def two_keys(settings):
    settings.BROKER_ENCRYPTION_KEYS = {"old": os.urandom(32), "new": os.urandom(32)}
    settings.BROKER_ENCRYPTION_KEY_ID = "old"
    return settings


def test_after_enrolment_the_column_holds_no_form_of_the_seed_and_the_shown_secret_signs_in():
    user = make_user("newbie", device=False)
    client = _password_login("newbie")
    page = client.get("/account/otp/enrol/").content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7=]+)</code>', page).group(1)
    seed = b32decode(secret)
    device = SealedTOTPDevice.objects.get(user=user)
    stored = _stored_key(device.pk)
    assert stored.startswith("v1:") and not any(form in stored for form in _seed_forms(seed))
    response = client.post("/account/otp/enrol/", {"token": _code(seed)})  # what the authenticator app shows
    assert response.status_code == 200 and b"backup-codes" in response.content
    assert _stored_key(device.pk) == stored  # confirming keeps the sealed seed as it was
    assert client.get("/").status_code == 200
    assert _password_login("newbie").post(VERIFY, {"token": totp_code(device, 1)})["Location"] == "/"


def test_a_new_device_s_seed_is_never_written_in_clear_even_inside_its_transaction():
    user = make_user("alice", device=False)
    seen: list[tuple] = []

    def record(execute, sql, params, many, context):
        seen.append(params or ())
        return execute(sql, params, many, context)

    seed = os.urandom(20)
    with connection.execute_wrapper(record):
        device = SealedTOTPDevice.objects.create(user=user, name="phone", confirmed=True, key=seed.hex())
    written = [str(p) for params in seen for p in (params if isinstance(params, list | tuple) else [params])]
    assert not any(seed.hex() in p for p in written)
    assert device.bin_key == seed and _stored_key(device.pk) == device.key


def test_a_sealed_seed_copied_to_another_user_s_device_row_does_not_verify(caplog):
    alice, bob = make_user("alice"), make_user("bob")
    alices = SealedTOTPDevice.objects.get(user=alice)
    bobs = SealedTOTPDevice.objects.get(user=bob)
    _set_stored_key(bobs.pk, _stored_key(alices.pk))
    with caplog.at_level(logging.ERROR, logger="accounts.models"):
        response = _password_login("bob").post(VERIFY, {"token": totp_code(alices)})
    assert response.status_code == 200 and b"wrong" in response.content
    assert f"TOTP device {bobs.pk}" in caplog.text and "secret_tampered" in caplog.text
    assert _password_login("alice").post(VERIFY, {"token": totp_code(alices)})["Location"] == "/"


def test_a_seed_written_in_clear_into_the_column_is_refused_not_crashed():
    user = make_user("alice")
    device = SealedTOTPDevice.objects.get(user=user)
    seed = os.urandom(20)
    _set_stored_key(device.pk, seed.hex())  # as by hand, or by a release from before the seal
    response = _password_login("alice").post(VERIFY, {"token": _code(seed)})
    assert response.status_code == 200 and b"wrong" in response.content
    assert key_usage()["TOTP seeds"] == {NOT_SEALED: 1}


def test_rotation_re_seals_every_seed_under_the_new_key_and_sign_in_still_works(two_keys):
    users = [make_user(name) for name in ("alice", "bob", "carol")]
    devices = [SealedTOTPDevice.objects.get(user=user) for user in users]
    seeds = [device.bin_key for device in devices]
    assert key_usage()["TOTP seeds"] == {"old": 3}
    two_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    out = io.StringIO()
    call_command("rotate_broker_keys", batch_size=2, stdout=out)
    assert "rotated onto 'new': 3 TOTP seeds" in out.getvalue()
    assert key_usage()["TOTP seeds"] == {"new": 3}
    del two_keys.BROKER_ENCRYPTION_KEYS["old"]  # the retired key can now be removed
    for user, device, seed in zip(users, devices, seeds, strict=True):
        stored = _stored_key(device.pk)
        assert stored.startswith("v1:new:") and not any(form in stored for form in _seed_forms(seed))
        assert _password_login(user.username).post(VERIFY, {"token": _code(seed)})["Location"] == "/"
    call_command("rotate_broker_keys", stdout=(again := io.StringIO()))
    assert "nothing to do" in again.getvalue()


def test_rotation_leaves_a_clear_seed_alone_and_reports_it(two_keys):
    device = SealedTOTPDevice.objects.get(user=make_user("alice"))
    _set_stored_key(device.pk, os.urandom(20).hex())
    two_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    call_command("rotate_broker_keys", stdout=(out := io.StringIO()))
    assert f"{NOT_SEALED}: 1" in out.getvalue()
    assert not _stored_key(device.pk).startswith("v1:")


def test_rotation_stops_with_a_clear_error_on_a_seed_under_a_removed_key(two_keys):
    make_user("alice")
    del two_keys.BROKER_ENCRYPTION_KEYS["old"]
    two_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    with pytest.raises(Exception, match="secret_key_unknown"):
        call_command("rotate_broker_keys")


def _device_as_the_old_release_stored_it(username: str) -> tuple[TOTPDevice, bytes]:
    device = TOTPDevice.objects.create(user=make_user(username, device=False), name="phone", confirmed=True)
    return device, bytes.fromhex(device.key)


def test_the_migration_seals_existing_clear_seeds_and_their_codes_still_verify():
    (alice, alice_seed), (bob, bob_seed) = (_device_as_the_old_release_stored_it(n) for n in ("alice", "bob"))
    assert _stored_key(alice.pk) == alice_seed.hex()
    migration.totp_seeds_seal(apps, None)
    for device, seed in ((alice, alice_seed), (bob, bob_seed)):
        stored = _stored_key(device.pk)
        assert stored.startswith("v1:") and not any(form in stored for form in _seed_forms(seed))
    assert otp_check(user=alice.user, token=_code(alice_seed)).pk == alice.pk
    assert otp_check(user=bob.user, token=_code(bob_seed)).pk == bob.pk


def test_running_the_migration_again_changes_nothing_and_its_reverse_restores_the_hex_seeds():
    device, seed = _device_as_the_old_release_stored_it("alice")
    migration.totp_seeds_seal(apps, None)
    once = _stored_key(device.pk)
    migration.totp_seeds_seal(apps, None)
    assert _stored_key(device.pk) == once
    migration.totp_seeds_unseal(apps, None)
    assert _stored_key(device.pk) == seed.hex()


def test_the_migration_names_a_device_whose_key_is_not_hex():
    device, _ = _device_as_the_old_release_stored_it("alice")
    _set_stored_key(device.pk, "not-hex")
    with pytest.raises(ValueError, match=f"TOTP device {device.pk} has a key that is not hex"):
        migration.totp_seeds_seal(apps, None)


def test_the_migration_s_frozen_binding_agrees_with_the_live_one():
    for pk in (1, 98765):
        assert migration.key_binding(pk) == SealedTOTPDevice(pk=pk).key_binding


def test_the_admin_never_shows_the_seed_nor_offers_its_qr_code_or_a_way_to_type_one():
    staff = make_user("staff")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = verified_client(staff)
    device = SealedTOTPDevice.objects.get(user=make_user("alice"))
    forms = [*_seed_forms(device.bin_key), device.key]
    for url in (
        reverse("admin:otp_totp_totpdevice_changelist"),
        reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
    ):
        page = client.get(url).content.decode()
        assert "alice" in page and not any(form in page for form in forms), url
        assert 'name="key"' not in page and "qrcode" not in page.lower()
    with pytest.raises(NoReverseMatch):
        reverse("admin:otp_totp_totpdevice_config", args=[device.pk])
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code in (302, 404)
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code in (302, 404)
    assert client.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 403
    assert (
        client.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"}).status_code == 302
    )
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()  # a lost phone: the user enrols again


def test_a_key_id_too_long_for_the_sealed_seed_to_fit_is_a_system_check_error(settings):
    assert check_totp_seed_fits(None) == []
    settings.BROKER_ENCRYPTION_KEYS = {"k" * 12: os.urandom(32)}
    settings.BROKER_ENCRYPTION_KEY_ID = "k" * 12
    [error] = check_totp_seed_fits(None)
    assert error.id == "accounts.E001" and "at most 11 characters" in error.hint
    with pytest.raises(ValueError, match="does not fit"):
        SealedTOTPDevice.objects.create(user=make_user("alice", device=False), name="phone")
    assert not SealedTOTPDevice.objects.exists()


def test_the_admin_signs_in_through_the_site_s_sign_in_which_reads_the_sealed_seed():
    staff = make_user("staff")
    staff.is_staff = True
    staff.save()
    device = SealedTOTPDevice.objects.get(user=staff)
    client = Client()
    response = client.post(  # django-otp's admin form would verify with its own class, which cannot open the seal
        "/admin/login/?next=/admin/",
        {"username": "staff", "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": "123456"},
    )
    assert response.status_code == 302 and response["Location"] == "/login/?next=/admin/"
    assert client.get("/admin/", follow=True).redirect_chain[-1][0].startswith("/login/?next=")
    assert client.post("/login/?next=/admin/", {"username": "staff", "password": PASSWORD})["Location"] == "/admin/"
    assert client.get("/admin/")["Location"].startswith(VERIFY)
    assert client.post(VERIFY, {"token": totp_code(device), "next": "/admin/"})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_removing_a_device_in_the_admin_ends_the_sessions_it_verified_at_the_next_request():
    staff = make_user("staff")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    admin_client = verified_client(staff)
    alice = make_user("alice")
    client = _password_login("alice")
    device = SealedTOTPDevice.objects.get(user=alice)
    assert client.post(VERIFY, {"token": totp_code(device)})["Location"] == "/"
    assert client.get("/account/").status_code == 200  # the session's device is now cached
    admin_client.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"})
    assert client.get("/account/").status_code == 302
