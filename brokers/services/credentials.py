"""Writes and reads of a broker account's secrets: the only code that seals, opens or re-seals the
ciphertext (the admin only shows whether an account has one)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db import transaction

from brokers import crypto
from brokers.models import BrokerAccount


def broker_credentials_set(*, account: BrokerAccount, credentials: dict[str, str]) -> None:
    """Seal ``credentials`` (string values only) under the current key and store them on ``account``.

    Raises ValueError for anything but a flat object of strings, so nothing unreadable is stored.
    """
    if not isinstance(credentials, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in credentials.items()
    ):
        raise ValueError("credentials must be an object of string values")
    if account.pk is None:
        raise ValueError("save the account before storing its credentials")
    plaintext = json.dumps(credentials, sort_keys=True).encode()
    account.credentials_ciphertext = crypto.encrypt(plaintext, associated_data=account.credentials_binding)
    BrokerAccount.objects.filter(pk=account.pk).update(credentials_ciphertext=account.credentials_ciphertext)


def broker_credentials_get(*, account: BrokerAccount) -> dict[str, str]:
    """Return the account's credentials ({} if none); raise crypto.SecretError if they cannot be read."""
    if not account.credentials_ciphertext:
        return {}
    return json.loads(crypto.decrypt(account.credentials_ciphertext, associated_data=account.credentials_binding))


def broker_credentials_rotate(*, batch_size: int = 500) -> Iterator[int]:
    """Re-encrypt every stored secret not yet under the current key; yield the number done per batch.

    Each row is re-read and rewritten under a row lock, so a concurrent update is never overwritten
    with stale data. Raises crypto.SecretError (and stops) on a row that fails to decrypt.
    """
    from django.conf import settings

    current = settings.BROKER_ENCRYPTION_KEY_ID
    pending = (
        BrokerAccount.objects.exclude(credentials_ciphertext="")
        .exclude(credentials_ciphertext__startswith=f"{crypto.FORMAT_VERSION}:{current}:")
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    ids = list(pending)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        with transaction.atomic():
            for account in BrokerAccount.objects.select_for_update().filter(pk__in=chunk).order_by("pk"):
                plaintext = crypto.decrypt(account.credentials_ciphertext, associated_data=account.credentials_binding)
                account.credentials_ciphertext = crypto.encrypt(plaintext, associated_data=account.credentials_binding)
                account.save(update_fields=["credentials_ciphertext"])
        yield len(chunk)


def broker_credentials_key_usage() -> dict[str, int]:
    """Count stored secrets per key id, to show that a retired key is no longer referenced."""
    usage: dict[str, int] = {}
    for ciphertext in BrokerAccount.objects.exclude(credentials_ciphertext="").values_list(
        "credentials_ciphertext", flat=True
    ):
        key_id = crypto.key_id_of(ciphertext)
        usage[key_id] = usage.get(key_id, 0) + 1
    return usage
