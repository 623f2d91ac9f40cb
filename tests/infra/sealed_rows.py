"""Rows of every sealed field (broker credentials and sessions, TOTP seeds), the local keys and a KMS
key service on the local AWS server, for the key service's tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Organisation, SealedTOTPDevice, User
from brokers.models import BrokerAccount, BrokerSession
from brokers.services.credentials import broker_credentials_get, broker_credentials_set
from brokers.services.sessions import session_secrets, session_start
from core import sealing
from infra.key_rotation import retired_keys_forget
from infra.kms import KmsKeyService

ALIAS = "alias/terminal-secrets"


@dataclass
class Rows:
    accounts: list[BrokerAccount]
    devices: list[SealedTOTPDevice]
    seeds: list[bytes]

    def credentials(self, n: int) -> dict[str, str]:
        return {"api_key": f"key-{n}", "api_secret": f"secret-{n}"}

    def assert_all_open(self) -> None:
        """Every sealed value opens to what was stored, read afresh from the database."""
        for n, account in enumerate(self.accounts):
            account = BrokerAccount.objects.get(pk=account.pk)
            assert broker_credentials_get(account=account) == self.credentials(n)
            assert session_secrets(account) == {"access_token": f"token-{n}"}
        for device, seed in zip(self.devices, self.seeds, strict=True):
            assert SealedTOTPDevice.objects.get(pk=device.pk).bin_key == seed

    def stored(self) -> list[str]:
        """Every sealed value as stored."""
        return [
            *BrokerAccount.objects.order_by("pk").values_list("credentials_ciphertext", flat=True),
            *BrokerSession.objects.order_by("pk").values_list("secrets_ciphertext", flat=True),
            *SealedTOTPDevice.objects.order_by("pk").values_list("key", flat=True),
        ]


def make_rows(count: int = 3) -> Rows:
    org = Organisation.objects.create(name="Acme", slug="acme")
    accounts, devices, seeds = [], [], []
    for n in range(count):
        account = BrokerAccount.objects.create(organisation=org, label=f"A{n}", broker="paper", client_code=f"C{n}")
        broker_credentials_set(account=account, credentials={"api_key": f"key-{n}", "api_secret": f"secret-{n}"})
        session_start(
            account=account, secrets={"access_token": f"token-{n}"}, expires_at=timezone.now() + timedelta(hours=8)
        )
        seed = os.urandom(20)
        user = User.objects.create(username=f"user{n}")
        devices.append(SealedTOTPDevice.objects.create(user=user, name="phone", confirmed=True, key=seed.hex()))
        accounts.append(account)
        seeds.append(seed)
    return Rows(accounts, devices, seeds)


@pytest.fixture
def local_keys(settings):
    """Two local keys, "old" current; retirements forgotten afterwards."""
    settings.BROKER_ENCRYPTION_KEYS = {"old": os.urandom(32), "new": os.urandom(32)}
    settings.BROKER_ENCRYPTION_KEY_ID = "old"
    settings.SEALING_BACKEND = "local"
    settings.SEALING_RETIRED_CACHE_SECONDS = 0
    retired_keys_forget()
    yield settings
    retired_keys_forget()


@dataclass
class Kms:
    service: KmsKeyService
    client: object
    key_a: str  # ARNs
    key_b: str

    def point_alias_at(self, arn: str) -> None:
        self.client.update_alias(AliasName=ALIAS, TargetKeyId=arn)
        self.service.forget()


@pytest.fixture
def kms(aws, local_keys):
    """A KMS key service on the local AWS server under ALIAS (key A; key B made too), registered for
    ``v2`` texts but not sealing until a test sets SEALING_BACKEND = "kms"."""
    client = aws.client("kms")
    key_a = client.create_key(Description="A")["KeyMetadata"]["Arn"]
    key_b = client.create_key(Description="B")["KeyMetadata"]["Arn"]
    client.create_alias(AliasName=ALIAS, TargetKeyId=key_a)
    service = KmsKeyService(key_id=ALIAS, region=aws.region, endpoint_url=aws.endpoint_url)
    saved = sealing.registered_provider(service.version)
    sealing.register_provider(service)
    yield Kms(service, client, key_a, key_b)
    sealing.unregister_provider(service.version)
    if saved is not None:
        sealing.register_provider(saved)
