"""Opening a broker account for an organisation: its broker (fixed from then on), label, client code
and the credentials its family's login needs, sealed at once (brokers.services.credentials)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.db import IntegrityError, transaction

from accounts.models import Organisation
from audit.services import audit_record
from brokers.adapters.registry import family, registered_codes
from brokers.errors import BrokerAccountDuplicate, BrokerAccountInvalid
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_set

# A broker's client id: letters, digits and a few separators (Zerodha's are like AB1234).
CLIENT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_CREDENTIAL_LENGTH = 512


def broker_account_create(
    *,
    actor,
    organisation: Organisation,
    broker: str,
    label: str,
    client_code: str,
    credentials: Mapping[str, str],
    ip: str | None = None,
) -> BrokerAccount:
    """Create the organisation's account at ``broker`` and seal the ``credentials`` its family's login
    names (only those; an account of a family without a login stores none). The creation is audited
    as ``broker_account.created`` with the names of the stored credentials, never their values.

    Raises BrokerAccountInvalid (422, ``extra["field"]``) for an unregistered broker, an empty label,
    a malformed client code or a missing credential, and BrokerAccountDuplicate (409) when the broker
    already has an account with this client code."""
    label, client_code = label.strip(), client_code.strip()
    if broker not in registered_codes():
        raise BrokerAccountInvalid(f"Choose a broker: {broker[:40]!r} is not one.", extra={"field": "broker"})
    if not label or len(label) > 100:
        raise BrokerAccountInvalid("Give the account a label of 1 to 100 characters.", extra={"field": "label"})
    if not CLIENT_CODE.match(client_code):
        raise BrokerAccountInvalid(
            "The client code is the broker's client id: letters and digits (also . _ -), at most 64.",
            extra={"field": "client_code"},
        )
    sealed = _needed_credentials(broker, credentials)
    if BrokerAccount.objects.filter(broker=broker, client_code=client_code).exists():
        raise _duplicate(broker, client_code)
    try:
        with transaction.atomic():
            account = BrokerAccount.objects.create(
                organisation=organisation, label=label, broker=broker, client_code=client_code
            )
            if sealed:
                broker_credentials_set(account=account, credentials=sealed)
            audit_record(
                actor=actor,
                action="broker_account.created",
                target=account,
                payload={
                    "organisation": organisation.slug,
                    "broker": broker,
                    "label": label,
                    "client_code": client_code,
                    "mode": "paper" if account.is_paper else "live",
                    "credentials": sorted(sealed),  # names only
                },
                ip=ip,
            )
    except IntegrityError:  # created meanwhile by another request
        raise _duplicate(broker, client_code) from None
    return account


def broker_account_credentials_replace(
    *, actor, account: BrokerAccount, credentials: Mapping[str, str], ip: str | None = None
) -> bool:
    """Replace the account's credentials with those its family's login names (a rotated API secret),
    sealed at once; audited as ``broker_account.credentials_replaced`` with their names only. Different
    credentials end the account's live session (brokers.services.credentials); return whether the
    account has credentials to sign in with at all (False for a family without a login: nothing stored).

    Raises BrokerAccountInvalid (422, ``extra["field"]``) for a missing or over-long credential."""
    sealed = _needed_credentials(account.broker, credentials)
    if not sealed:
        return False
    with transaction.atomic():
        broker_credentials_set(account=account, credentials=sealed, actor=actor)
        audit_record(
            actor=actor,
            action="broker_account.credentials_replaced",
            target=account,
            payload={"broker": account.broker, "credentials": sorted(sealed)},
            ip=ip,
        )
    return True


def _needed_credentials(broker: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """The credentials ``broker``'s family's login names, each required and at most MAX_CREDENTIAL_LENGTH."""
    login = family(broker).login
    needed = login.credentials if login is not None else ()
    sealed: dict[str, str] = {}
    for name in needed:
        value = credentials.get(name) or ""
        value = value.strip() if isinstance(value, str) else ""
        if not value or len(value) > MAX_CREDENTIAL_LENGTH or "\x00" in value:
            raise BrokerAccountInvalid(
                f"{credential_label(name)} is required for a {broker} account.", extra={"field": name}
            )
        sealed[name] = value
    return sealed


_ACRONYMS = {"api": "API", "totp": "TOTP", "imei": "IMEI", "pin": "PIN", "mpin": "MPIN", "id": "ID", "uri": "URI"}


def credential_label(name: str) -> str:
    """How a page names a credential: ``api_key`` -> "API key"."""
    words = [_ACRONYMS.get(word, word) for word in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _duplicate(broker: str, client_code: str) -> BrokerAccountDuplicate:
    return BrokerAccountDuplicate(
        f"{broker} already has an account with client code {client_code}.",
        extra={"field": "client_code", "broker": broker},
    )
