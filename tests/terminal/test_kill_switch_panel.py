"""The kill switch on the trading page: the confirmation says what engaging each offered switch will
do (its scope in words, the open orders it cancels, the positions it squares off, who may lift it),
the banner names the active switch's scope in words, and a bad scope is a 422."""

import re
from decimal import Decimal

import pytest

from orders.models import Order, Status
from orders.services import place_order
from rms.models import KillSwitch
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def busy_world(world):  # noqa: F811
    """A filled buy (one open position) and two resting orders by the trader on the account."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="web",
    )
    for price in ("950", "940"):
        place_order(
            actor=world.trader,
            account=world.account,
            request=world.request(world.equity, price=Decimal(price)),
            source="web",
        )
    return world


def _panel(client, acme):
    return client.get(f"/trading/{acme.account.pk}/panels/kill-switch/?confirm=1", **HX)


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_a_trader_is_told_what_each_switch_will_cancel_and_square_off(client, busy_world, otp_login):
    acme = busy_world
    otp_login(client, acme.trader)
    text = _text(_panel(client, acme))
    assert (
        "Stop trading on Account Paper (P1): refuse its new orders, cancel its 2 open orders and square off"
        " its 1 open position at market. Only an Owner or Admin of Acme can release it." in text
    )
    assert "Stop your own trading: refuse your new orders on every account and cancel your 2 open orders" in text
    assert "Organisation Acme" not in text and "platform" not in text  # a Trader may not halt those
    assert "account:" not in text


def test_an_owner_is_offered_the_organisations_switch_too(client, busy_world, otp_login):
    acme = busy_world
    otp_login(client, acme.owner)
    text = _text(_panel(client, acme))
    assert (
        "Stop trading on Organisation Acme: refuse its new orders, cancel its 2 open orders and square off"
        " its 1 open position at market." in text
    )
    assert "cancel your 0 open orders" in text


def test_engaging_says_what_it_did_and_the_banner_names_the_scope_and_who_releases_it(client, busy_world, otp_login):
    acme = busy_world
    otp_login(client, acme.trader)
    engaged = client.post(f"/trading/{acme.account.pk}/kill-switch/", {"scope": "account", "confirm": "yes"}, **HX)
    assert engaged.status_code == 200
    text = _text(engaged)
    assert "Cancelled 2 open orders and squared off 1 position at market." in text
    assert "Kill switch ON for Account Paper (P1): new orders are refused" in text
    assert "Only an Owner or Admin of Acme can release it." in text
    assert "account:" not in text and "Release" not in text  # a Trader may not lift it


def test_the_banner_names_the_organisations_switch_and_the_owner_releases_it_by_its_scope(
    client, busy_world, otp_login
):
    acme = busy_world
    otp_login(client, acme.owner)
    engaged = client.post(f"/trading/{acme.account.pk}/kill-switch/", {"scope": "organisation", "confirm": "yes"}, **HX)
    assert engaged.status_code == 200
    assert "Kill switch ON for Organisation Acme" in _text(engaged)
    assert KillSwitch.objects.get(key=f"organisation:{acme.org.pk}").active
    released = client.post(
        f"/trading/{acme.account.pk}/kill-switch/", {"scope": "organisation", "action": "release"}, **HX
    )
    assert released.status_code == 200 and "Kill switch ON" not in _text(released)
    assert not KillSwitch.objects.get(key=f"organisation:{acme.org.pk}").active


def test_a_traders_own_switch_reads_as_their_own_trading(client, busy_world, otp_login):
    acme = busy_world
    otp_login(client, acme.trader)
    engaged = client.post(f"/trading/{acme.account.pk}/kill-switch/", {"scope": "user", "confirm": "yes"}, **HX)
    text = _text(engaged)
    assert "Cancelled 2 open orders and squared off 0 positions at market." in text
    assert "Kill switch ON for your own trading" in text


@pytest.mark.parametrize("scope", ["account:1", "everything", "x" * 500])
def test_an_unknown_scope_is_a_422_and_engages_nothing(client, busy_world, otp_login, scope):
    acme = busy_world
    otp_login(client, acme.owner)
    response = client.post(f"/trading/{acme.account.pk}/kill-switch/", {"scope": scope, "confirm": "yes"}, **HX)
    assert response.status_code == 422 and 'data-code="kill_switch_scope_invalid"' in response.content.decode()
    assert not KillSwitch.objects.exists()
    assert Order.objects.filter(status=Status.OPEN).count() == 2


def test_a_trader_may_not_engage_the_platforms_switch(client, busy_world, otp_login):
    acme = busy_world
    otp_login(client, acme.trader)
    response = client.post(f"/trading/{acme.account.pk}/kill-switch/", {"scope": "global", "confirm": "yes"}, **HX)
    assert response.status_code == 403 and not KillSwitch.objects.exists()


def test_the_choices_are_read_only_when_asked_for_and_shown_again_when_the_box_was_not_ticked(
    client, busy_world, otp_login
):
    acme = busy_world
    otp_login(client, acme.trader)
    closed = _text(client.get(f"/trading/{acme.account.pk}/panels/kill-switch/", **HX))
    assert "Kill switch…" in closed and "Stop trading" not in closed
    unticked = client.post(f"/trading/{acme.account.pk}/kill-switch/", {"scope": "account"}, **HX)
    assert unticked.status_code == 422 and 'data-code="confirmation_required"' in unticked.content.decode()
    assert "cancel its 2 open orders" in _text(unticked)
