from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import User
from marketdata.models import Instrument
from marketdata.quotes import Quote, set_quotes, store
from terminal.services.watchlists import watchlist_add_instrument, watchlist_ensure_default

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, otp_login):
    user = User.objects.create_user("trader", password="long-password-123")
    otp_login(client, user)
    return client, user


@pytest.fixture
def reliance():
    return Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="RELIANCE", exchange_token="2885", instrument_type="EQ"
    )


def test_the_dashboard_shows_the_watchlist_with_live_quote_cells(signed_in, reliance):
    client, user = signed_in
    watchlist = watchlist_ensure_default(user=user)
    watchlist_add_instrument(user=user, watchlist_id=watchlist.pk, instrument_id=reliance.pk)
    store().clear()
    set_quotes([Quote(reliance.pk, Decimal("2950.10"), datetime.now(UTC), close=Decimal("2900"))])
    page = client.get("/").content.decode()
    assert "RELIANCE" in page
    assert f'id="q-{reliance.pk}-ltp" class="ltp up">2,950.10<' in page
    assert f'id="q-{reliance.pk}-chg" class="chg up">50.10 (1.73%)<' in page
    assert f'data-instruments="{reliance.pk}"' in page


def test_search_finds_symbols_as_you_type(signed_in, reliance):
    client, user = signed_in
    watchlist = watchlist_ensure_default(user=user)
    response = client.get(f"/watchlists/{watchlist.pk}/search/", {"q": "relia"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "RELIANCE" in response.content.decode()
    assert "No instrument matches" in client.get(f"/watchlists/{watchlist.pk}/search/", {"q": "zzz"}).content.decode()


def test_adding_by_htmx_returns_the_refreshed_panel_and_by_plain_post_redirects(signed_in, reliance):
    client, user = signed_in
    watchlist = watchlist_ensure_default(user=user)
    response = client.post(f"/watchlists/{watchlist.pk}/add/", {"instrument": reliance.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="watchlist"' in response.content.decode()
    assert f'id="wl-row-{reliance.pk}"' in response.content.decode()
    plain = client.post(f"/watchlists/{watchlist.pk}/remove/{reliance.pk}/")
    assert plain.status_code == 302 and plain["Location"] == f"/?wl={watchlist.pk}"
    assert not watchlist.items.exists()


@pytest.mark.parametrize("value", ["", "abc", "999999"])
def test_a_bad_instrument_is_a_422_with_a_clear_message(signed_in, value):
    client, user = signed_in
    watchlist = watchlist_ensure_default(user=user)
    response = client.post(f"/watchlists/{watchlist.pk}/add/", {"instrument": value}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()


def test_pages_need_a_login(client):
    assert client.get("/").status_code == 302
    assert client.post("/watchlists/1/add/", {"instrument": 1}).status_code == 302
