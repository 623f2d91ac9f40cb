"""Writes and reads of a broker account's secrets: the only code that seals or opens the ciphertext
(the admin only shows whether an account has one). Re-sealing under a new key is the key rotation's
(infra.key_rotation), over the field brokers registers as sealed."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from audit.services import audit_record
from brokers import crypto
from brokers.models import BrokerAccount
from brokers.services.sessions import session_end

CREDENTIALS_CHANGED = "credentials changed: sign in again"


def broker_credentials_set(*, account: BrokerAccount, credentials: dict[str, str], actor: Any = None) -> None:
    """Seal ``credentials`` (string values only) under the current key and store them on ``account``.

    When they replace different credentials (a rotated API secret), the account's live session at
    the broker ends in the same transaction, audited as ``broker.session_ended``, so the next order
    waits for a sign-in with the new ones. Stored credentials that no longer open count as different.
    Raises ValueError for anything but a flat object of strings, so nothing unreadable is stored.
    """
    if not isinstance(credentials, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in credentials.items()
    ):
        raise ValueError("credentials must be an object of string values")
    if account.pk is None:
        raise ValueError("save the account before storing its credentials")
    plaintext = json.dumps(credentials, sort_keys=True).encode()
    with transaction.atomic():
        stored = (
            BrokerAccount.objects.select_for_update()
            .filter(pk=account.pk)
            .values_list("credentials_ciphertext", flat=True)
            .get()
        )
        sealed = crypto.encrypt(plaintext, associated_data=account.credentials_binding)
        BrokerAccount.objects.filter(pk=account.pk).update(credentials_ciphertext=sealed)
        account.credentials_ciphertext = sealed
        if (
            stored
            and _opened(stored, account) != plaintext
            and session_end(account_id=account.pk, reason=CREDENTIALS_CHANGED)
        ):
            audit_record(
                actor=actor,
                action="broker.session_ended",
                target=account,
                payload={"reason": "credentials_changed", "broker": account.broker},
            )


def _opened(ciphertext: str, account: BrokerAccount) -> bytes | None:
    try:
        return crypto.decrypt(ciphertext, associated_data=account.credentials_binding)
    except crypto.SecretError:
        return None


def broker_credentials_get(*, account: BrokerAccount) -> dict[str, str]:
    """Return the account's credentials ({} if none); raise crypto.SecretError if they cannot be read."""
    if not account.credentials_ciphertext:
        return {}
    return json.loads(crypto.decrypt(account.credentials_ciphertext, associated_data=account.credentials_binding))
