"""The KMS key service (infra.kms) against the local AWS server: envelope encryption round trips,
the row and data-key bindings, the cache of unwrapped data keys, clear errors."""

from __future__ import annotations

import pytest
from django.core import checks

from brokers import crypto
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get, broker_credentials_set
from core import sealing
from infra.models import DataKey

from .sealed_rows import ALIAS, make_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealing_kms(kms, settings):
    settings.SEALING_BACKEND = "kms"
    settings.SEALING_KMS_KEY_ID = ALIAS
    return kms


def _kms_calls(service, operation: str) -> list[str]:
    calls: list[str] = []
    service.client().meta.events.register(f"before-call.kms.{operation}", lambda **kw: calls.append(operation))
    return calls


def test_every_sealed_field_round_trips_under_kms_with_its_data_key_stored_wrapped(sealing_kms):
    rows = make_rows()
    rows.assert_all_open()
    stored = rows.stored()
    assert all(value.startswith("v2:") for value in stored)
    handles = {sealing.key_id_of(value) for value in stored}
    assert len(handles) == 1  # one data key for the batch, not one per row
    data_key = DataKey.objects.get(pk=handles.pop())
    assert data_key.master_key == sealing_kms.key_a and len(bytes(data_key.wrapped)) > 32
    assert all("secret-" not in value and "token-" not in value for value in stored)


def test_a_sealed_totp_seed_fits_its_column_and_the_system_check_agrees(sealing_kms):
    rows = make_rows(1)
    assert len(rows.stored()[-1]) <= 80
    assert not [e for e in checks.run_checks() if e.id == "accounts.E001"]


def test_reading_many_rows_unwraps_each_data_key_once(sealing_kms):
    rows = make_rows(6)
    sealing_kms.service.forget()  # as a fresh process
    decrypts = _kms_calls(sealing_kms.service, "Decrypt")
    rows.assert_all_open()
    rows.assert_all_open()
    assert decrypts == ["Decrypt"]


def test_the_cache_is_bounded(sealing_kms, settings):
    settings.SEALING_KMS_CACHE_SIZE = 2
    settings.SEALING_KMS_DATA_KEY_SECONDS = 60
    rows = make_rows(1)
    for _ in range(3):  # three more data keys
        sealing_kms.service.forget()
        sealing.encrypt(b"x", associated_data=b"y")
    assert DataKey.objects.count() == 4
    for handle in DataKey.objects.values_list("handle", flat=True):
        sealing_kms.service.opening_key(handle)
    assert len(sealing_kms.service._cache) == 2
    rows.assert_all_open()


def test_a_ciphertext_copied_to_another_row_does_not_open(sealing_kms):
    rows = make_rows(2)
    mine, theirs = rows.accounts
    mine.refresh_from_db()
    theirs.credentials_ciphertext = mine.credentials_ciphertext
    with pytest.raises(crypto.SecretError) as error:
        broker_credentials_get(account=theirs)
    assert error.value.code == "secret_tampered"


def test_a_wrapped_data_key_moved_to_another_handle_is_refused_by_kms(sealing_kms):
    rows = make_rows(1)
    first = DataKey.objects.get()
    sealing_kms.service.forget()
    sealing.encrypt(b"x", associated_data=b"y")  # a second data key
    second = DataKey.objects.exclude(pk=first.pk).get()
    DataKey.objects.filter(pk=first.pk).update(wrapped=bytes(second.wrapped))
    sealing_kms.service.forget()
    with pytest.raises(crypto.SecretError) as error:
        broker_credentials_get(account=BrokerAccount.objects.get(pk=rows.accounts[0].pk))
    assert error.value.code == "secret_key_unavailable"


def test_a_text_naming_an_unknown_data_key_gets_a_clear_error(sealing_kms):
    rows = make_rows(1)
    account = BrokerAccount.objects.get(pk=rows.accounts[0].pk)
    parts = account.credentials_ciphertext.split(":")
    account.credentials_ciphertext = ":".join([parts[0], "zzzzzzzz", *parts[2:]])
    with pytest.raises(crypto.SecretError) as error:
        broker_credentials_get(account=account)
    assert error.value.code == "secret_key_unknown"


def test_a_v2_text_without_a_key_service_configured_gets_a_clear_error(sealing_kms, settings):
    rows = make_rows(1)
    sealing.unregister_provider("v2")
    settings.SEALING_BACKEND = "local"
    try:
        with pytest.raises(crypto.SecretError) as error:
            broker_credentials_get(account=BrokerAccount.objects.get(pk=rows.accounts[0].pk))
        assert error.value.code == "secret_key_unknown" and "not configured" in error.value.message
    finally:
        sealing.register_provider(sealing_kms.service)


def test_an_unreachable_key_service_is_a_typed_error(local_keys, settings):
    from infra.kms import KmsKeyService

    service = KmsKeyService(key_id=ALIAS, region="ap-south-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(crypto.SecretError) as error:
        service.current_master()
    assert error.value.code == "key_service_unreachable"


def test_a_seal_rolled_back_with_its_transaction_does_not_leave_texts_under_a_missing_data_key(sealing_kms):
    from django.db import transaction

    rows = make_rows(1)
    sealing_kms.service.forget()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        sealing.encrypt(b"x", associated_data=b"y")  # makes a data key inside the transaction
        raise Rollback
    account = rows.accounts[0]
    broker_credentials_set(account=account, credentials={"api_key": "k", "api_secret": "s"})
    handle = sealing.key_id_of(BrokerAccount.objects.get(pk=account.pk).credentials_ciphertext)
    assert DataKey.objects.filter(pk=handle).exists()
    assert broker_credentials_get(account=BrokerAccount.objects.get(pk=account.pk)) == {
        "api_key": "k",
        "api_secret": "s",
    }


@pytest.mark.parametrize("ref", ["zz\x00zzzz", "zz zz", "../x", "é", "x" * 65, ""])
def test_a_text_whose_key_ref_is_not_a_key_name_is_malformed_before_any_lookup(sealing_kms, ref):
    with pytest.raises(crypto.SecretError) as error:
        sealing.decrypt(f"v2:{ref}:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA", associated_data=b"x")
    assert error.value.code == "secret_malformed"
