"""NorenOMS's two sign-ins against the local server: QuickAuth (Shoonya and most Noren brokers) and
Flattrade's redirect with its token exchange; and stop-loss orders sent as documented."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, BrokerRejected
from brokers.families.login import totp_now
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_set
from families.noren.adapter import FlattradeAdapter, NorenAdapter
from tests.families.noren import kit as k

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(settings):
    running = k.make_server(flattrade_api_key="ftkey", flattrade_secret="ftsecret", flattrade_code="rc-123")
    settings.BROKER_ENDPOINTS = {"shoonya": running.endpoints(), "flattrade-test": running.endpoints()}
    settings.BROKER_HTTP_READ_TIMEOUT = 1.0
    yield running
    running.stop()


@pytest.fixture
def account(world):
    account = BrokerAccount.objects.create(organisation=world.org, label="Shoonya", broker="shoonya", client_code=k.UID)
    broker_credentials_set(account=account, credentials=dict(k.NorenKit.credentials))
    return account


def test_quickauth_sends_the_documented_fields_and_keeps_only_the_token(account, server):
    sign_in = NorenAdapter.login_direct(account)
    assert sign_in.secrets == {"susertoken": k.SUSERTOKEN} and sign_in.broker_user == k.UID
    sent = server.last("login")
    assert sent.raw.startswith(b"jData=") and b"jKey" not in sent.raw
    assert sent.body == {
        "source": "API",
        "apkversion": "1.0.0",
        "uid": k.UID,
        "pwd": hashlib.sha256(k.PASSWORD.encode()).hexdigest(),
        "factor2": totp_now(k.TOTP_SECRET),
        "vc": k.VENDOR_CODE,
        "appkey": hashlib.sha256(f"{k.UID}|{k.API_SECRET}".encode()).hexdigest(),
        "imei": k.IMEI,
    }
    assert sign_in.expires_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata")).strftime("%H:%M") == "06:00"
    assert not server.violations


def test_a_wrong_password_is_refused_with_norens_words(account, server):
    broker_credentials_set(account=account, credentials={**k.NorenKit.credentials, "password": "wrong"})
    with pytest.raises(BrokerRejected, match="Wrong Password"):
        NorenAdapter.login_direct(account)


def test_missing_credentials_are_named_before_anything_is_sent(account, server):
    broker_credentials_set(account=account, credentials={"password": k.PASSWORD})
    with pytest.raises(ValueError, match="totp_secret"):
        NorenAdapter.login_direct(account)
    assert not server.requests


def test_flattrade_signs_in_through_its_page_and_the_token_exchange(world, server):
    account = BrokerAccount.objects.create(
        organisation=world.org, label="Flattrade", broker="shoonya", client_code=k.UID
    )
    broker_credentials_set(account=account, credentials={"api_key": "ftkey", "api_secret": "ftsecret"})
    page = urlsplit(FlattradeAdapter.login_start(account, state="signed.state"))
    assert parse_qs(page.query) == {"app_key": ["ftkey"], "state": ["signed.state"]}
    sign_in = FlattradeAdapter.login_finish(account, {"code": "rc-123", "client": k.UID, "state": "signed.state"})
    assert sign_in.secrets == {"susertoken": k.SUSERTOKEN}
    assert server.last("login").body == {
        "api_key": "ftkey",
        "request_code": "rc-123",
        "api_secret": hashlib.sha256(b"ftkeyrc-123ftsecret").hexdigest(),
    }
    with pytest.raises(BrokerRejected):
        FlattradeAdapter.login_finish(account, {"code": "other"})
    with pytest.raises(ValueError):
        FlattradeAdapter.login_finish(account, {"code": "bad code!"})
    with pytest.raises(ValueError):
        FlattradeAdapter.login_finish(account, {"code": "rc-123", "client": "SOMEONE"})
    assert not server.violations


def test_stop_loss_orders_carry_their_trigger_and_keep_it_when_modified(world, account, server):
    from tests.brokers.contract.conftest import map_equity

    map_equity(world, k.NorenKit())
    sign_in = NorenAdapter.login_direct(account)
    adapter = NorenAdapter.for_account(account, sign_in.secrets)
    request = BrokerOrderRequest(
        tag="SL0001", instrument_id=world.equity.pk, exchange="NSE", tradingsymbol="RELIANCE", side="SELL",
        quantity=3, order_type="SL", product="CNC", validity="DAY", instrument_type="EQ",
        tick_size=Decimal("0.05"), price=Decimal("950"), trigger_price=Decimal("955.5"),
    )  # fmt: skip
    placed = adapter.place_order(request)
    assert server.last("place").body["trgprc"] == "955.5" and server.last("place").body["prctyp"] == "SL-LMT"
    assert adapter.order_book()[0].status == "TRIGGER_PENDING"
    adapter.modify_order(broker_order_id=placed.broker_order_id, change=BrokerModifyRequest(price=Decimal("949")))
    assert server.last("modify").body["trgprc"] == "955.5"  # the trigger it held, read from its history
    adapter.modify_order(broker_order_id=placed.broker_order_id, change=BrokerModifyRequest(order_type="LIMIT"))
    assert "trgprc" not in server.last("modify").body and server.last("modify").body["prc"] == "949"
    with pytest.raises(BrokerRejected) as refused:
        adapter.modify_order(broker_order_id="99999", change=BrokerModifyRequest(quantity=1))
    assert refused.value.code == "broker_order_not_found"
    assert not server.violations
