"""The broker registry (brokers/data/brokers.toml): its size and the honesty of its statuses, the
families covered, overrides and limits as data, its table in docs/brokers.md and on the accounts page,
and the commands that read it; the direct (TOTP / API key) sign-in and the order-update inbox of a
network family's stream."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.models import AuditEvent
from brokers import catalogue
from brokers.adapters import registry
from brokers.adapters.base import BrokerRejected, BrokerUpdate, Login, SignIn
from brokers.families.runtime import OrderInbox
from brokers.models import BrokerAccount, BrokerSession, InboundUpdate
from brokers.rate_limits import RateLimit
from brokers.services.sessions import session_secrets
from paper.adapter import PaperAdapter
from tests.brokers.contract.kits import KITS

NETWORK_FAMILIES_WITH_OWN_SUITES = {"paper", "kite"}  # tested by tests/paper and tests/kite


def _brokers():
    return [entry for entry in catalogue.entries().values() if entry.family != "paper"]


def test_the_registry_lists_at_least_seventy_brokers_with_unique_codes_and_a_family_each():
    brokers = _brokers()
    assert len(brokers) >= 70
    assert len({entry.code for entry in brokers}) == len(brokers)
    assert all(entry.name and entry.family for entry in brokers)
    assert all(not entry.endpoints.get("api") for entry in brokers if entry.status == "no_api")


def test_the_implemented_families_reach_at_least_twenty_five_brokers_and_each_runs_the_contract_suite():
    reachable = [entry for entry in _brokers() if entry.status in ("tested", "untested")]
    assert len(reachable) >= 25, sorted(entry.code for entry in reachable)
    installed = {registry.family(code).code for code in registry.registered_codes()}
    assert installed - NETWORK_FAMILIES_WITH_OWN_SUITES <= set(KITS), "a family without a contract kit"
    # "tested" is claimed only by the broker whose entry the suite runs for its family.
    for entry in _brokers():
        if entry.status == "tested" and entry.family not in NETWORK_FAMILIES_WITH_OWN_SUITES:
            assert entry.family in KITS and KITS[entry.family]().broker == entry.code


def test_a_broker_of_an_installed_family_without_a_known_host_is_only_planned():
    for entry in _brokers():
        if not entry.endpoints.get("api") and entry.family not in ("none",):
            assert entry.status == "planned", entry.code


def test_endpoints_come_from_the_settings_first_then_the_registry(settings):
    settings.BROKER_ENDPOINTS = {"kite": {"api": "http://127.0.0.1:9/kite"}}
    assert catalogue.endpoint("kite", "api") == "http://127.0.0.1:9/kite"
    assert catalogue.endpoint("kite", "ws") == "wss://ws.kite.trade"
    with pytest.raises(catalogue.UnknownBrokerEntry):
        catalogue.endpoint("kite", "nowhere")
    with pytest.raises(catalogue.UnknownBrokerEntry):
        catalogue.entry("no-such-broker")


def test_rate_limits_are_data_with_the_familys_defaults_where_a_broker_gives_none():
    default = (RateLimit("other", 10, 1.0),)
    assert catalogue.limits("kite", "orders", default) == default
    parsed = catalogue._limits("x", {"orders": ["40/1s", "200/1min"], "day": ["5000/1day"]})
    assert parsed["orders"] == (RateLimit("orders_0", 40, 1.0), RateLimit("orders_1", 200, 60.0))
    assert parsed["day"] == (RateLimit("day_0", 5000, 86400.0),)
    for bad in ("ten/1s", "10/s", "10/1week", "0/1s"):
        with pytest.raises(ValueError):
            catalogue._limits("x", {"orders": [bad]})


def test_docs_brokers_md_shows_the_registry_as_it_is():
    call_command("broker_registry", "--check-docs")


def test_the_registry_command_lists_brokers_by_status(capsys):
    call_command("broker_registry", "--status", "no_api")
    out = capsys.readouterr().out
    assert "sharekhan" in out and "kite " not in out and "No public API:" in out


@pytest.mark.django_db
def test_the_accounts_page_shows_the_registry_and_groups_brokers_by_family(world, client, otp_login):
    otp_login(client, world.owner)
    html = client.get("/orgs/acme/broker-accounts/").content.decode()
    assert 'id="broker-registry"' in html and html.count('<tr data-status="') == len(catalogue.entries())
    assert '<optgroup label="Kite Connect">' in html and "Zerodha</option>" in html
    assert 'data-groups="' in html and "js/broker_accounts.js" in html


@pytest.mark.django_db
def test_loading_a_master_refuses_an_unknown_broker_and_a_family_without_one():
    with pytest.raises(CommandError, match="No adapter"):
        call_command("load_broker_master", "--broker", "no-such-broker")
    with pytest.raises(CommandError, match="no symbol master"):
        call_command("load_broker_master", "--broker", "paper")


# --- the direct sign-in ---------------------------------------------------------------------------


class _TotpBroker(PaperAdapter):
    """A family whose accounts sign in with stored credentials and a TOTP (no redirect)."""

    code = "totpfamily"
    login = Login(kind="totp", credentials=("password", "totp_secret"), expires_at_ist="05:00")
    refuse = False

    @classmethod
    def login_direct(cls, account):
        if cls.refuse:
            raise BrokerRejected("Invalid TOTP")
        return SignIn(secrets={"susertoken": "tok-123456789"}, expires_at=timezone.now() + timedelta(hours=8))

    @classmethod
    def update_from_stream(cls, account_id, message):
        if "bad" in message:
            raise ValueError("not an order update")
        if not message.get("tag"):
            return None
        return BrokerUpdate(
            account_id=account_id,
            tag=message["tag"],
            broker_order_id=message["id"],
            status=message["status"],
            ts=timezone.now(),
        )


@pytest.fixture
def totp_account(world):
    registry.register("totpbroker", _TotpBroker)
    account = BrokerAccount.objects.create(organisation=world.org, label="TOTP", broker="totpbroker", client_code="T1")
    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    assign_perm("brokers.view_brokeraccount", world.trader, account)
    _TotpBroker.refuse = False
    yield account
    registry.unregister("totpbroker")


@pytest.mark.django_db
def test_connect_signs_a_totp_family_in_at_once_and_audits_it(world, totp_account, client, otp_login):
    otp_login(client, world.trader)
    response = client.post(f"/brokers/accounts/{totp_account.pk}/connect/")
    assert response.status_code == 302 and response["Location"] == f"/?account={totp_account.pk}"
    assert session_secrets(totp_account) == {"susertoken": "tok-123456789"}
    event = AuditEvent.objects.get(action="broker.session_started")
    assert event.payload_data["broker"] == "totpbroker" and "tok-123456789" not in str(event.payload_data)
    assert "tok-123456789" not in BrokerSession.objects.get(account=totp_account).secrets_ciphertext


@pytest.mark.django_db
def test_a_refused_direct_sign_in_starts_no_session_and_is_audited(world, totp_account, client, otp_login):
    _TotpBroker.refuse = True
    otp_login(client, world.trader)
    response = client.post(f"/brokers/accounts/{totp_account.pk}/connect/")
    assert response.status_code == 302 and session_secrets(totp_account) is None
    refused = AuditEvent.objects.get(action="broker.session_refused")
    assert "Invalid TOTP" in refused.payload_data["message"]


@pytest.mark.django_db(transaction=True)
def test_a_streams_order_messages_reach_the_durable_queue_once_each(world, totp_account):
    inbox = OrderInbox(totp_account)
    message = {"tag": "ABC123", "id": "9001", "status": "OPEN"}
    inbox.receive([message, dict(message), {"id": "1", "status": "OPEN"}, {"bad": 1}])
    inbox.receive([message])  # the same message again (after a reconnect)
    assert InboundUpdate.objects.filter(account=totp_account).count() == 1
    assert (inbox.received, inbox.ignored, inbox.malformed) == (1, 1, 1)
