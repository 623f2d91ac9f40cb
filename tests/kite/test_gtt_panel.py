"""The terminal's GTT panel for a Kite account against the local Kite server: the tab only for a broker
with GTT, the form's HTMX post, the list, delete, refusals in the panel, and who may act."""

from __future__ import annotations

import re

import pytest

from audit.models import AuditEvent
from terminal.models import WatchlistItem
from terminal.services.watchlists import watchlist_ensure_default

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def watched(world):
    for user in (world.trader, world.viewer):
        WatchlistItem.objects.create(watchlist=watchlist_ensure_default(user=user), instrument=world.equity)


def _as(client, otp_login, user):
    otp_login(client, user)
    return client


def _form(world, **fields):
    return {
        "instrument": world.equity.pk,
        "kind": "single",
        "side": "BUY",
        "quantity": "10",
        "product": "CNC",
        "trigger_price": "950",
        "price": "951",
    } | fields


def test_the_gtt_tab_shows_only_for_a_broker_with_gtt(world, kite_account, client, otp_login, watched):
    _as(client, otp_login, world.trader)
    assert b'id="tab-gtt"' in client.get(f"/?account={kite_account.pk}").content
    assert b'id="tab-gtt"' not in client.get(f"/?account={world.account.pk}").content
    refused = client.get(f"/trading/{world.account.pk}/panels/gtt/", **HX)
    assert refused.status_code == 422 and b"<form" not in refused.content  # no GTT at this broker: nothing to offer


def test_a_single_gtt_from_the_form_is_placed_and_listed(world, kite_account, fake_kite, client, otp_login, watched):
    _as(client, otp_login, world.trader)
    panel = client.get(f"/trading/{kite_account.pk}/panels/gtt/", **HX)
    assert panel.status_code == 200 and b'id="gtt-form"' in panel.content and b"No GTTs." in panel.content
    placed = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world), **HX)
    assert placed.status_code == 200, placed.content
    page = placed.content.decode()
    assert "GTT 100 placed." in page and 'id="gtt-100"' in page and "950.00" in page
    assert fake_kite.count("POST", "/gtt/triggers") == 1
    assert AuditEvent.objects.filter(action="gtt.placed", actor=f"user:{world.trader.pk}").count() == 1


def test_an_oco_from_the_form_ignores_the_single_fields(world, kite_account, fake_kite, client, otp_login, watched):
    _as(client, otp_login, world.trader)
    fields = {
        "kind": "oco",
        "side": "SELL",
        "trigger_price": "not read",
        "stoploss_trigger": "950",
        "stoploss_price": "949",
        "target_trigger": "1050",
        "target_price": "1051",
    }
    placed = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, **fields), **HX)
    assert placed.status_code == 200, placed.content
    assert fake_kite.gtts[100]["type"] == "two-leg"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"price": "abc"}, "price_not_a_number"),
        ({"price": "NaN"}, "price_not_finite"),
        ({"price": "1e400"}, "price_out_of_range"),
        ({"price": "-5"}, "price_not_positive"),
        ({"price": "951.03"}, "price_off_tick"),
        ({"trigger_price": "1000"}, "gtt_trigger_at_last_price"),
        ({"quantity": "1e30"}, "quantity_out_of_range"),
        ({"quantity": "0"}, "quantity_not_positive"),
        (
            {
                "kind": "oco",
                "stoploss_trigger": "1010",
                "stoploss_price": "1009",
                "target_trigger": "1050",
                "target_price": "1051",
                "side": "SELL",
            },
            "gtt_stoploss_wrong_side",
        ),
        ({"instrument": "x"}, "instrument_not_found"),
        ({"kind": ""}, "gtt_kind_invalid"),
    ],
)
def test_a_bad_form_comes_back_in_the_panel_with_its_code(
    world,
    kite_account,
    fake_kite,
    client,
    otp_login,
    watched,
    fields,
    code,
):
    _as(client, otp_login, world.trader)
    refused = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, **fields), **HX)
    assert refused.status_code == 422
    assert f'data-code="{code}"' in refused.content.decode()
    assert not fake_kite.count("POST", "/gtt/triggers")


def test_delete_from_the_list_removes_the_gtt(world, kite_account, fake_kite, client, otp_login, watched):
    _as(client, otp_login, world.trader)
    client.post(f"/trading/{kite_account.pk}/gtt/", _form(world), **HX)
    deleted = client.post(f"/trading/{kite_account.pk}/gtt/100/delete/", **HX)
    assert deleted.status_code == 200
    assert "GTT 100 deleted." in deleted.content.decode() and 'id="gtt-100"' not in deleted.content.decode()
    assert not fake_kite.gtts and AuditEvent.objects.filter(action="gtt.deleted").count() == 1
    missing = client.post(f"/trading/{kite_account.pk}/gtt/100/delete/", **HX)
    # A panel answers a refused act with 422 (trading._panel): the page exists, the request does not fit it.
    assert missing.status_code == 422 and b'data-code="broker_order_not_found"' in missing.content


def test_a_viewer_sees_the_list_but_cannot_place_or_delete(world, kite_account, fake_kite, client, otp_login, watched):
    _as(client, otp_login, world.trader)
    client.post(f"/trading/{kite_account.pk}/gtt/", _form(world), **HX)
    client.logout()
    _as(client, otp_login, world.viewer)
    panel = client.get(f"/trading/{kite_account.pk}/panels/gtt/", **HX)
    assert panel.status_code == 200 and b'id="gtt-100"' in panel.content
    assert b'id="gtt-form"' not in panel.content and b"Delete GTT" not in panel.content
    assert client.post(f"/trading/{kite_account.pk}/gtt/", _form(world), **HX).status_code == 403
    assert client.post(f"/trading/{kite_account.pk}/gtt/100/delete/", **HX).status_code == 403
    assert fake_kite.count("POST", "/gtt/triggers") == 1 and 100 in fake_kite.gtts


def test_a_paper_account_is_refused_as_a_broker_without_gtt(world, kite_account, client, otp_login, watched):
    _as(client, otp_login, world.trader)
    refused = client.post(f"/trading/{world.account.pk}/gtt/", _form(world), **HX)
    assert refused.status_code == 422 and b'data-code="broker_cannot_gtt"' in refused.content
    assert b'id="gtt-form"' not in refused.content
    plain = client.post(f"/trading/{world.account.pk}/gtt/", _form(world))
    assert plain.status_code == 302
    assert not AuditEvent.objects.filter(action__startswith="gtt.").exists()


def test_a_signed_out_account_shows_why_the_book_cannot_be_read(
    world, kite_account, fake_kite, client, otp_login, watched
):
    from brokers.models import BrokerSession

    BrokerSession.objects.all().delete()
    _as(client, otp_login, world.trader)
    panel = client.get(f"/trading/{kite_account.pk}/panels/gtt/", **HX)
    assert panel.status_code == 200 and b'data-code="broker_session_expired"' in panel.content


def _token(html: str) -> str:
    match = re.search(r'<form id="gtt-form".*?name="form_token" value="([0-9a-f]+)"', html, re.S)
    assert match is not None, "the GTT form carries a one-time token"
    return match.group(1)


def test_a_double_submit_of_the_gtt_form_places_one_gtt(world, kite_account, fake_kite, client, otp_login, watched):
    _as(client, otp_login, world.trader)
    token = _token(client.get(f"/trading/{kite_account.pk}/panels/gtt/", **HX).content.decode())
    first = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, form_token=token), **HX)
    again = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, form_token=token), **HX)
    assert first.status_code == again.status_code == 200
    assert "GTT 100 placed." in again.content.decode()
    assert fake_kite.count("POST", "/gtt/triggers") == 1 and len(fake_kite.gtts) == 1
    assert AuditEvent.objects.filter(action="gtt.placed").count() == 1
    assert _token(first.content.decode()) != token  # the next GTT gets a fresh token


def test_a_gtt_whose_answer_was_lost_is_not_placed_again_from_the_same_form(
    world, kite_account, fake_kite, client, otp_login, watched
):
    _as(client, otp_login, world.trader)
    fake_kite.lose_answer(method="POST", path="/gtt/triggers", drop=True)
    lost = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, form_token="a1"), **HX)
    assert lost.status_code == 422 and _token(lost.content.decode()) == "a1"
    again = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, form_token="a1"), **HX)
    assert again.status_code == 409 and b'data-code="gtt_in_progress"' in again.content
    assert fake_kite.count("POST", "/gtt/triggers") == 1


def test_refused_gtt_input_is_audited_like_a_refused_order_and_the_form_keeps_its_token(
    world, kite_account, fake_kite, client, otp_login, watched
):
    _as(client, otp_login, world.trader)
    refused = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, price="951.03", form_token="b2"), **HX)
    assert refused.status_code == 422 and _token(refused.content.decode()) == "b2"
    event = AuditEvent.objects.get(action="gtt.rejected")
    assert event.actor == f"user:{world.trader.pk}"
    assert event.payload_data["rule"] == "price_off_tick" and event.payload_data["price"] == "951.03"
    assert (
        event.payload_data["instrument_id"] == world.equity.pk and event.payload_data["account_id"] == kite_account.pk
    )
    fake_kite.fail(status=400, error_type="InputException", message="Invalid trigger", path="/gtt/triggers")
    broker_refused = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, form_token="b2"), **HX)
    assert broker_refused.status_code == 422
    rules = [e.payload_data["rule"] for e in AuditEvent.objects.filter(action="gtt.rejected")]
    assert sorted(rules) == ["broker_rejected", "price_off_tick"]
    placed = client.post(f"/trading/{kite_account.pk}/gtt/", _form(world, form_token="b2"), **HX)
    assert placed.status_code == 200 and len(fake_kite.gtts) == 1  # the token was not spent by the refusals
