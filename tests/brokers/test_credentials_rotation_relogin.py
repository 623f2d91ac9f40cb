"""Changing an account's broker credentials (a rotated API secret) ends its live session at the
broker, audited, so it signs in again with the new ones; credentials that no longer open (a retired
or unknown key) are shown as needing to be entered again, never as a server error."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Organisation
from audit.models import AuditEvent
from brokers.models import BrokerAccount, BrokerSession
from brokers.services.credentials import CREDENTIALS_CHANGED, broker_credentials_get, broker_credentials_set
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


def _credentials_url(account: BrokerAccount, slug: str = "acme") -> str:
    return f"/orgs/{slug}/broker-accounts/{account.pk}/credentials/"


def test_an_owner_replaces_the_api_secret_on_the_page_and_the_account_must_sign_in_again(world, client, otp_login):
    account = _kite(world)
    signed_in = otp_login(client, world.owner)
    form = signed_in.get(_credentials_url(account))
    assert form.status_code == 200 and 'name="api_secret"' in form.content.decode()
    assert "old-secret" not in form.content.decode()
    response = signed_in.post(_credentials_url(account), {"api_key": "k", "api_secret": "new-secret"})
    assert response.status_code == 302
    assert broker_credentials_get(account=BrokerAccount.objects.get(pk=account.pk))["api_secret"] == "new-secret"
    assert session_state(account).ended_reason == CREDENTIALS_CHANGED
    replaced = AuditEvent.objects.get(action="broker_account.credentials_replaced")
    assert json.loads(replaced.payload)["credentials"] == ["api_key", "api_secret"]
    assert "new-secret" not in replaced.payload
    assert AuditEvent.objects.filter(action="broker.session_ended").count() == 1


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"api_key": "k"}, 400),
        ({"api_key": "k", "api_secret": "x" * 513}, 400),
        ({"api_key": "k", "api_secret": "bad\x00secret"}, 400),
        ({"api_key": "k", "api_secret": "   "}, 400),
    ],
)
def test_refused_new_credentials_change_nothing(world, client, otp_login, data, status):
    account = _kite(world)
    stored = BrokerAccount.objects.get(pk=account.pk).credentials_ciphertext
    response = otp_login(client, world.owner).post(_credentials_url(account), data)
    assert response.status_code == status
    assert BrokerAccount.objects.get(pk=account.pk).credentials_ciphertext == stored
    assert session_state(account).live


def test_a_trader_may_not_replace_credentials_and_another_organisation_s_account_is_not_found(world, client, otp_login):
    account = _kite(world)
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="kite", client_code="ZX9")
    trader = otp_login(client, world.trader).post(_credentials_url(account), {"api_key": "k", "api_secret": "n"})
    assert trader.status_code in (403, 404)
    owner = otp_login(Client(), world.owner)
    assert owner.post(_credentials_url(theirs), {"api_key": "k", "api_secret": "n"}).status_code == 404
    assert owner.post(_credentials_url(theirs, "other"), {"api_key": "k", "api_secret": "n"}).status_code == 404
    assert session_state(account).live
