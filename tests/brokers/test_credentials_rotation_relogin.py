"""Changing an account's broker credentials (a rotated API secret) ends its live session at the
broker, audited, so it signs in again with the new ones; credentials that no longer open (a retired
or unknown key) are shown as needing to be entered again, never as a server error."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from brokers.models import BrokerAccount, BrokerSession
from brokers.services.credentials import CREDENTIALS_CHANGED, broker_credentials_set
from brokers.services.sessions import session_start, session_state

pytestmark = pytest.mark.django_db
PAGE = "/orgs/acme/broker-accounts/"


def _kite(world, *, live: bool = True) -> BrokerAccount:
    account = BrokerAccount.objects.create(organisation=world.org, label="Zerodha", broker="kite", client_code="ZX1")
    broker_credentials_set(account=account, credentials={"api_key": "k", "api_secret": "old-secret"})
    if live:
        session_start(account=account, secrets={"access_token": "t"}, expires_at=timezone.now() + timedelta(hours=3))
    return account


def test_a_new_api_secret_ends_the_live_session_and_is_audited(world):
    account = _kite(world)
    broker_credentials_set(account=account, credentials={"api_key": "k", "api_secret": "new-secret"}, actor=world.owner)
    state = session_state(account)
    assert not state.live and state.ended_reason == CREDENTIALS_CHANGED
    event = AuditEvent.objects.get(action="broker.session_ended")
    assert json.loads(event.payload) == {"reason": "credentials_changed", "broker": "kite"}
    assert event.actor == f"user:{world.owner.pk}"


def test_storing_the_same_credentials_again_keeps_the_session(world):
    account = _kite(world)
    broker_credentials_set(account=account, credentials={"api_key": "k", "api_secret": "old-secret"})
    assert session_state(account).live
    assert not AuditEvent.objects.filter(action="broker.session_ended").exists()


def test_new_credentials_without_a_live_session_end_nothing(world):
    account = _kite(world, live=False)
    broker_credentials_set(account=account, credentials={"api_key": "k", "api_secret": "new-secret"})
    assert not BrokerSession.objects.filter(account=account).exists()
    assert not AuditEvent.objects.filter(action="broker.session_ended").exists()


def test_unreadable_stored_credentials_count_as_changed(world):
    account = _kite(world)
    BrokerAccount.objects.filter(pk=account.pk).update(
        credentials_ciphertext="v1:gone:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA"
    )
    broker_credentials_set(account=account, credentials={"api_key": "k", "api_secret": "new-secret"})
    assert not session_state(account).live


def _unreadable(account: BrokerAccount) -> None:
    BrokerAccount.objects.filter(pk=account.pk).update(
        credentials_ciphertext=account.credentials_ciphertext.replace("v1:", "v1:x", 1)  # an unknown key id
    )


def test_the_accounts_page_asks_for_unreadable_credentials_again(world, client, otp_login):
    account = _kite(world, live=False)
    _unreadable(account)
    page = otp_login(client, world.owner).get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    row = html[html.index(f'id="broker-account-{account.pk}"') :]
    assert "Credentials cannot be read: enter them again" in row[: row.index("</tr>")]


def test_connect_with_unreadable_credentials_is_refused_with_its_reason_not_a_500(world, client, otp_login):
    account = _kite(world, live=False)
    _unreadable(account)
    response = otp_login(client, world.owner).post(f"/brokers/accounts/{account.pk}/connect/")
    assert response.status_code == 302
    refused = AuditEvent.objects.get(action="broker.session_refused")
    assert "cannot be read (secret_key_unknown): enter them again" in json.loads(refused.payload)["message"]
