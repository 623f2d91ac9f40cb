import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Organisation
from brokers import crypto
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get, broker_credentials_set
from infra.key_rotation import key_usage

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
SECRET = {"api_key": "kite-key-123", "access_token": "tok-SECRET-456"}


@pytest.fixture
def accounts():
    org = Organisation.objects.create(name="Acme", slug="acme")
    return [
        BrokerAccount.objects.create(organisation=org, label=f"A{n}", broker="paper", client_code=f"C{n}")
        for n in range(2)
    ]


@pytest.fixture
def two_keys(settings):
    settings.BROKER_ENCRYPTION_KEYS = {"old": os.urandom(32), "new": os.urandom(32)}
    settings.BROKER_ENCRYPTION_KEY_ID = "old"
    return settings


def test_credentials_round_trip_and_are_never_stored_in_clear(accounts):
    account = accounts[0]
    broker_credentials_set(account=account, credentials=SECRET)
    account.refresh_from_db()
    assert broker_credentials_get(account=account) == SECRET
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_ciphertext FROM brokers_brokeraccount WHERE id = %s", [account.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("v1:") and "tok-SECRET-456" not in stored and "kite-key" not in stored


def test_a_key_is_256_bits(settings):
    assert all(len(key) == 32 for key in settings.BROKER_ENCRYPTION_KEYS.values())


@pytest.mark.parametrize("part", [2, 3])
def test_a_tampered_nonce_or_ciphertext_is_refused(accounts, part):
    account = accounts[0]
    broker_credentials_set(account=account, credentials=SECRET)
    pieces = account.credentials_ciphertext.split(":")
    raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    raw[0] ^= 1
    pieces[part] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    account.credentials_ciphertext = ":".join(pieces)
    with pytest.raises(crypto.SecretError) as error:
        broker_credentials_get(account=account)
    assert error.value.code == "secret_tampered"


def test_a_ciphertext_copied_to_another_account_does_not_decrypt(accounts):
    mine, theirs = accounts
    broker_credentials_set(account=mine, credentials=SECRET)
    theirs.credentials_ciphertext = mine.credentials_ciphertext
    with pytest.raises(crypto.SecretError):
        broker_credentials_get(account=theirs)


@pytest.mark.parametrize("bad", [[], {"k": 1}, {"k": {"nested": "x"}}])
def test_only_flat_string_credentials_are_accepted(accounts, bad):
    with pytest.raises(ValueError, match="object of string values"):
        broker_credentials_set(account=accounts[0], credentials=bad)


def test_rotation_re_encrypts_every_row_and_leaves_none_on_the_old_key(accounts, two_keys, capsys):
    for account in accounts:
        broker_credentials_set(account=account, credentials=SECRET)
    assert key_usage()["broker credentials"] == {"old": 2}
    two_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    call_command("rotate_broker_keys")
    assert "rotated onto 'new': 2 broker credentials" in capsys.readouterr().out
    assert key_usage()["broker credentials"] == {"new": 2}
    del two_keys.BROKER_ENCRYPTION_KEYS["old"]  # the retired key can now be removed
    for account in BrokerAccount.objects.all():
        assert broker_credentials_get(account=account) == SECRET


def test_a_secret_under_a_removed_key_is_reported_not_crashed(accounts, two_keys):
    broker_credentials_set(account=accounts[0], credentials=SECRET)
    del two_keys.BROKER_ENCRYPTION_KEYS["old"]
    two_keys.BROKER_ENCRYPTION_KEY_ID = "new"
    with pytest.raises(Exception, match="secret_key_unknown"):
        call_command("rotate_broker_keys")


def test_nonces_do_not_repeat():
    seen = {crypto.encrypt(b"x", associated_data=b"a").split(":")[2] for _ in range(100_000)}
    assert len(seen) == 100_000


@pytest.mark.parametrize(
    ("value", "message"),
    [("k1", "is not id:base64key"), ("k1:" + crypto.new_key()[:10], "AES-256 needs 32"), ("k1:***", "not base64")],
)
def test_a_bad_key_setting_stops_start_up_with_one_line(tmp_path, value, message):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(VAR_DIR=str(tmp_path), BROKER_ENCRYPTION_KEYS=value)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: BROKER_ENCRYPTION_KEYS=") and message in result.stderr
