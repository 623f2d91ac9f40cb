"""Key rotation over every registered sealed field: local key to local key, local keys to KMS, KMS
key A to B; resumable after an interruption; retirement refused while a key is used, and a retired
key opens nothing."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from brokers import crypto
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get
from config.celery import app as celery_app
from core import sealing
from infra import tasks
from infra.key_rotation import DATA_KEYS, KeyRetireRefused, key_retire, key_usage, keys_rotate, rotation_pending
from infra.models import DataKey, RetiredKey
from infra.sealed_fields import sealed_fields

from .sealed_rows import make_rows

pytestmark = pytest.mark.django_db
FIELDS = ("broker credentials", "broker sessions", "TOTP seeds")


def _masters() -> set[str]:
    """Every master key some sealed value or data key uses."""
    return {key for counts in key_usage().values() for key in counts}


def test_every_secret_kind_is_registered_for_rotation():
    assert {spec.label for spec in sealed_fields()} >= set(FIELDS)


def test_rotation_moves_every_field_onto_the_new_local_key_with_a_progress_bar(local_keys):
    rows = make_rows()
    old_texts = rows.stored()
    local_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    assert sum(rotation_pending().values()) == 9
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_keys", batch_size=2, stdout=out, stderr=err)
    assert all(f"3 {name}" in out.getvalue() for name in FIELDS) and "rotated onto 'new'" in out.getvalue()
    assert "9/9" in err.getvalue()  # tqdm's bar
    assert _masters() == {"new"} and all(value.startswith("v1:new:") for value in rows.stored())
    rows.assert_all_open()
    key_retire(key="old")
    rotated, retired = AuditEvent.objects.filter(action__startswith="keys.").order_by("pk")
    assert (rotated.action, json.loads(rotated.payload)) == ("keys.rotated", {name: 3 for name in FIELDS})
    assert (retired.action, json.loads(retired.payload), retired.actor) == (
        "keys.retired",
        {"key": "old"},
        "system:keys",
    )
    with pytest.raises(crypto.SecretError) as error:  # a copy of an old text (a backup) opens nowhere
        sealing.decrypt(old_texts[0], associated_data=rows.accounts[0].credentials_binding)
    assert error.value.code == "secret_key_retired"


def test_the_old_command_name_still_rotates(local_keys):
    make_rows(1)
    local_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    call_command("rotate_broker_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert _masters() == {"new"}


def test_an_interrupted_rotation_resumes_where_it_stopped_and_no_row_is_half_written(local_keys, monkeypatch):
    rows = make_rows(5)
    local_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    real_encrypt, calls = sealing.encrypt, []

    def failing_encrypt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # the second row of the second batch
            raise RuntimeError("worker killed")
        return real_encrypt(*args, **kwargs)

    monkeypatch.setattr(sealing, "encrypt", failing_encrypt)
    steps = []
    with pytest.raises(RuntimeError, match="worker killed"):
        for step in keys_rotate(batch_size=2):
            steps.append(step)
    first = sealed_fields()[0].label
    assert [(s.label, s.count) for s in steps] == [(first, 2)]
    assert key_usage()[first] == {"new": 2, "old": 3}  # the first batch committed, the second rolled back whole
    rows.assert_all_open()
    monkeypatch.setattr(sealing, "encrypt", real_encrypt)
    assert rotation_pending() == {name: 3 if name == first else 5 for name in FIELDS}
    resumed = list(keys_rotate(batch_size=2))
    assert sum(s.count for s in resumed if s.label == first) == 3  # only what was left
    assert _masters() == {"new"}
    rows.assert_all_open()


def test_a_row_under_an_unknown_key_stops_rotation_with_a_clear_error_and_is_left_as_it_was(local_keys):
    rows = make_rows(3)
    local_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    broken = rows.accounts[1]
    text = BrokerAccount.objects.get(pk=broken.pk).credentials_ciphertext.replace("v1:old:", "v1:gone:")
    BrokerAccount.objects.filter(pk=broken.pk).update(credentials_ciphertext=text)
    with pytest.raises(CommandError, match="secret_key_unknown"):
        call_command("rotate_keys", batch_size=1, stdout=io.StringIO(), stderr=io.StringIO())
    assert BrokerAccount.objects.get(pk=broken.pk).credentials_ciphertext == text
    assert key_usage()["broker credentials"] == {"new": 1, "gone": 1, "old": 1}


def test_retiring_a_key_is_refused_while_it_is_current_or_used(local_keys):
    make_rows(1)
    with pytest.raises(KeyRetireRefused) as current:
        key_retire(key="old")
    assert current.value.code == "key_current"
    local_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    with pytest.raises(KeyRetireRefused) as used:
        key_retire(key="old")
    assert used.value.code == "key_in_use" and used.value.extra["in_use"] == {name: 1 for name in FIELDS}
    with pytest.raises(CommandError, match="key_in_use"):
        call_command("rotate_keys", retire="old", stdout=io.StringIO())
    assert not RetiredKey.objects.exists()


def test_a_retired_key_neither_opens_nor_seals(local_keys):
    local_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    RetiredKey.objects.create(key="old")
    text = sealing.encrypt(b"x", associated_data=b"y")  # under "new"
    local_keys.BROKER_ENCRYPTION_KEY_ID = "old"
    with pytest.raises(crypto.SecretError) as sealing_error:
        sealing.encrypt(b"x", associated_data=b"y")
    with pytest.raises(crypto.SecretError) as opening_error:
        sealing.decrypt(
            sealing.encrypt(b"x", associated_data=b"y", key_id="new").replace("v1:new", "v1:old"), associated_data=b"y"
        )
    assert sealing_error.value.code == opening_error.value.code == "secret_key_retired"
    assert sealing.decrypt(text, associated_data=b"y") == b"x"


def test_rotation_from_local_keys_to_kms_re_seals_every_row_and_retires_the_local_key(kms, settings):
    rows = make_rows()
    old_texts = rows.stored()
    settings.SEALING_BACKEND = "kms"
    call_command("rotate_keys", stdout=(out := io.StringIO()), stderr=io.StringIO())
    assert f"rotated onto '{kms.key_a}'" in out.getvalue() and "3 broker credentials" in out.getvalue()
    assert all(value.startswith("v2:") for value in rows.stored())
    assert _masters() == {kms.key_a}
    rows.assert_all_open()
    key_retire(key="old")
    with pytest.raises(crypto.SecretError) as error:
        sealing.decrypt(old_texts[0], associated_data=rows.accounts[0].credentials_binding)
    assert error.value.code == "secret_key_retired"


def test_rotation_from_kms_key_a_to_b_re_wraps_every_data_key_and_a_retires(kms, settings):
    settings.SEALING_BACKEND = "kms"
    rows = make_rows()
    kms.service.forget()
    sealing.encrypt(b"x", associated_data=b"y")  # a second data key
    texts = rows.stored()
    old_wraps = {dk.handle: bytes(dk.wrapped) for dk in DataKey.objects.all()}
    kms.point_alias_at(kms.key_b)  # the operator makes key B current
    assert rotation_pending()[DATA_KEYS] == 2
    call_command("rotate_keys", stdout=(out := io.StringIO()), stderr=io.StringIO())
    assert "2 data keys" in out.getvalue()
    assert set(DataKey.objects.values_list("master_key", flat=True)) == {kms.key_b}
    assert _masters() == {kms.key_b} and rows.stored() == texts  # re-wrapped in place, rows untouched
    kms.service.forget()
    rows.assert_all_open()
    key_retire(key=kms.key_a)
    handle, wrapped = next(iter(old_wraps.items()))  # a data key as wrapped under A (a restored backup)
    DataKey.objects.filter(pk=handle).update(master_key=kms.key_a, wrapped=wrapped)
    kms.service.forget()
    with pytest.raises(crypto.SecretError) as error:
        broker_credentials_get(account=BrokerAccount.objects.get(pk=rows.accounts[0].pk))
    assert error.value.code == "secret_key_retired"


def test_a_cached_data_key_stops_opening_once_its_master_is_retired(kms, settings):
    settings.SEALING_BACKEND = "kms"
    rows = make_rows(1)
    rows.assert_all_open()  # the data key is now cached
    RetiredKey.objects.create(key=kms.key_a)
    with pytest.raises(crypto.SecretError) as error:
        broker_credentials_get(account=BrokerAccount.objects.get(pk=rows.accounts[0].pk))
    assert error.value.code == "secret_key_retired"


def test_the_beat_task_rotates_and_is_scheduled(local_keys):
    rows = make_rows(2)
    local_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    tasks.rotate_keys()
    assert _masters() == {"new"}
    rows.assert_all_open()
    schedule = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert "infra.tasks.rotate_keys" in schedule


def _mutations():
    return st.one_of(
        st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
        st.tuples(st.just("cut"), st.integers(min_value=0), st.just(0)),
        st.tuples(st.just("char"), st.integers(min_value=0), st.sampled_from(":=A-_/\x00é")),
    )


def _corrupt_and_open(mutation) -> None:
    if not BrokerAccount.objects.exists():
        make_rows(1)
    account = BrokerAccount.objects.get()
    good = account.credentials_ciphertext
    kind, position, value = mutation
    position %= len(good)
    if kind == "flip":
        bad = good[:position] + chr(ord(good[position]) ^ value) + good[position + 1 :]
    elif kind == "cut":
        bad = good[:position]
    else:
        bad = good[:position] + str(value) + good[position + 1 :]
    if bad in (good, ""):  # an empty column is "no credentials", not a text
        return
    account.credentials_ciphertext = bad
    with pytest.raises(crypto.SecretError) as error:
        broker_credentials_get(account=account)
    assert error.value.code in {"secret_malformed", "secret_tampered", "secret_key_unknown"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_ciphertext FROM brokers_brokeraccount WHERE id = %s", [account.pk])
        assert cursor.fetchone()[0] == good


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_a_corrupted_ciphertext_gets_a_typed_error_and_nothing_is_overwritten(local_keys, mutation):
    _corrupt_and_open(mutation)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_a_corrupted_kms_ciphertext_gets_a_typed_error_and_nothing_is_overwritten(kms, settings, mutation):
    settings.SEALING_BACKEND = "kms"
    _corrupt_and_open(mutation)
