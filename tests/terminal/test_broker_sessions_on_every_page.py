"""Every signed-in page shows the user's broker sessions (accounts whose broker has a daily login): live
or lapsed, with a one-click sign-in again where the user may trade the account; only accounts the
user can reach; nothing for a user with paper accounts only; one query per page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm

from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_set
from brokers.services.sessions import session_end, session_start
from tests.kite import fake_kite as fk
from tests.otp_session import login_with_otp
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

pytestmark = pytest.mark.django_db

PAGES = {
    "watchlist and orders": "/",
    "option chain": "/options/",
    "compliance report": "/orgs/acme/compliance/trades/",
    "order-to-trade report": "/orgs/acme/compliance/order-to-trade/",
    "profile": "/account/",
    "risk limits": "/orgs/acme/limits/",
}
SESSIONS_QUERY = "s ON s.account_id = a.id"  # the badges' one statement


def _kite(world, label: str, *, live: bool | None, grant: tuple = ()) -> BrokerAccount:  # noqa: F811
    account = BrokerAccount.objects.create(organisation=world.org, label=label, broker="kite", client_code=label[:8])
    broker_credentials_set(account=account, credentials={"api_key": fk.API_KEY, "api_secret": fk.API_SECRET})
    if live is not None:
        session_start(account=account, secrets={"access_token": "t"}, expires_at=timezone.now() + timedelta(hours=8))
        if not live:
            session_end(account_id=account.pk, reason="Kite: token expired")
    for user, perm in grant:
        assign_perm(f"brokers.{perm}_brokeraccount", user, account)
    return account


@pytest.fixture
def accounts(world, settings):  # noqa: F811
    settings.KITE_LOGIN_URL = "http://127.0.0.1:9/connect/login"
    both = ((world.trader, "view"), (world.trader, "trade"))
    return {
        "live": _kite(world, "Kite live", live=True, grant=(*both, (world.viewer, "view"))),
        "lapsed": _kite(world, "Kite lapsed", live=False, grant=both),
        "never": _kite(world, "Kite new", live=None, grant=both),
        "hidden": _kite(world, "Kite hidden", live=True),  # in the organisation, granted to no trader
    }


def _badges(html: str) -> dict[str, str]:
    """{label: "live" | "lapsed"} of the header's broker sessions."""
    block = re.search(r'<ul class="broker-sessions".*?</ul>', html, re.S)
    if block is None:
        return {}
    found = re.findall(
        r'class="broker-session (live|lapsed)".*?<span class="label">([^<]+)</span>', block.group(0), re.S
    )
    return {label: state for state, label in found}


def _relogin_forms(html: str) -> list[str]:
    block = re.search(r'<ul class="broker-sessions".*?</ul>', html, re.S)
    return re.findall(r'<form method="post" action="(/brokers/accounts/\d+/connect/)"', block.group(0)) if block else []


@pytest.mark.parametrize("page", ["watchlist and orders", "option chain"])
def test_a_trader_sees_the_sessions_of_the_accounts_granted_to_them_with_relogin_for_the_lapsed(
    world,  # noqa: F811
    client,
    accounts,
    page,
):
    login_with_otp(client, world.trader)
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(PAGES[page])
    assert answer.status_code == 200
    html = answer.content.decode()
    assert _badges(html) == {"Kite lapsed": "lapsed", "Kite live": "live", "Kite new": "lapsed"}
    assert sorted(_relogin_forms(html)) == sorted(
        f"/brokers/accounts/{accounts[name].pk}/connect/" for name in ("lapsed", "never")
    )
    assert sum(SESSIONS_QUERY in q["sql"] for q in queries.captured_queries) == 1


@pytest.mark.parametrize("page", ["compliance report", "order-to-trade report", "profile", "risk limits"])
def test_an_owner_sees_every_account_of_the_organisation_on_any_page(world, client, accounts, page):  # noqa: F811
    login_with_otp(client, world.owner)
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(PAGES[page])
    assert answer.status_code == 200
    assert _badges(answer.content.decode()) == {
        "Kite hidden": "live",
        "Kite lapsed": "lapsed",
        "Kite live": "live",
        "Kite new": "lapsed",
    }
    assert sum(SESSIONS_QUERY in q["sql"] for q in queries.captured_queries) == 1


def test_a_viewer_sees_only_the_account_they_may_view_and_no_relogin(world, client, accounts):  # noqa: F811
    session_end(account_id=accounts["live"].pk, reason="signed out")
    login_with_otp(client, world.viewer)
    html = client.get("/account/").content.decode()
    assert _badges(html) == {"Kite live": "lapsed"}
    assert _relogin_forms(html) == []


def test_the_relogin_button_sends_the_trader_to_the_brokers_login_page(world, client, accounts):  # noqa: F811
    login_with_otp(client, world.trader)
    (action, *_) = _relogin_forms(client.get("/options/").content.decode())
    answer = client.post(action)
    assert answer.status_code == 302 and answer["Location"].startswith("http://127.0.0.1:9/connect/login?")


def test_a_user_with_paper_accounts_only_sees_no_broker_sessions(world, client):  # noqa: F811
    login_with_otp(client, world.trader)
    for path in ("/", "/options/", "/account/"):
        html = client.get(path).content.decode()
        assert 'id="broker-sessions"' not in html and _badges(html) == {}


def test_a_deactivated_account_leaves_the_header(world, client, accounts):  # noqa: F811
    BrokerAccount.objects.filter(pk=accounts["lapsed"].pk).update(is_active=False)
    login_with_otp(client, world.trader)
    assert "Kite lapsed" not in _badges(client.get("/options/").content.decode())
