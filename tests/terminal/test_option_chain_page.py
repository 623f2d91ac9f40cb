from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import User
from marketdata.models import Instrument
from marketdata.quotes import Quote, set_quotes, store
from marketdata.sample_master import sample_rows
from marketdata.services import instrument_upsert_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, otp_login):
    otp_login(client, User.objects.create_user("trader", password="long-password-123"))
    return client


@pytest.fixture
def sample_master(db):
    store().clear()
    report = instrument_upsert_many(rows=enumerate(sample_rows(date.today()), start=1))
    assert not report.errors
    yield
    store().clear()


def _quote(symbol: str, ltp: str, **extra) -> Quote:
    return Quote(Instrument.objects.get(tradingsymbol=symbol).pk, Decimal(ltp), datetime.now(UTC), **extra)


def test_the_chain_shows_calls_and_puts_around_the_money_with_live_cells_oi_and_iv(signed_in, sample_master):
    call = Instrument.objects.get(underlying="NIFTY", instrument_type="CE", strike=26000)
    put = Instrument.objects.get(underlying="NIFTY", instrument_type="PE", strike=26000)
    set_quotes([_quote("NIFTY 50", "26010"), _quote(call.tradingsymbol, "420.50", oi=150000, close=Decimal("400"))])
    response = signed_in.get("/options/?underlying=NIFTY&strikes=5")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('<tr class="atm"') == 1 and 'data-strike="26000"' in page
    assert f'id="q-{call.pk}-ltp" class="ltp up">420.50<' in page
    assert f'id="q-{put.pk}-ltp" class="ltp">—<' in page  # no quote yet: a placeholder the socket fills
    assert ">1,50,000<" in page  # open interest, grouped the Indian way
    assert ">26,000.00 <abbr" in page  # the ATM strike, as a price
    assert page.count("data-strike=") == 11
    ids = page.split('data-instruments="')[1].split('"')[0].split(",")
    assert str(call.pk) in ids and len(ids) == 1 + 11 * 2
    iv_cell = page.split(f'data-instrument="{call.pk}"')[0].rsplit('<td class="num iv', 1)[1]
    assert "—" not in iv_cell.split("</td>")[0]  # an IV computed from the call's price


def test_the_top_bar_links_to_the_option_chain(signed_in, sample_master):
    assert 'href="/options/"' in signed_in.get("/").content.decode()


def test_an_htmx_refresh_gets_only_the_chain(signed_in, sample_master):
    response = signed_in.get("/options/?underlying=BANKNIFTY", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<section id="option-chain"')
    assert "BANKNIFTY" in body and "<html" not in body


def test_an_unknown_underlying_is_a_404_page_naming_it(signed_in, sample_master):
    response = signed_in.get("/options/?underlying=NOSUCH")
    assert response.status_code == 404
    assert "No options on &#x27;NOSUCH&#x27;" in response.content.decode()
    assert 'href="?underlying=NIFTY"' in response.content.decode()


@pytest.mark.parametrize("expiry", ["2020-01-01", "tomorrow", "2026-13-40"])
def test_a_bad_expiry_is_a_422_page(signed_in, sample_master, expiry):
    response = signed_in.get(f"/options/?underlying=NIFTY&expiry={expiry}")
    assert response.status_code == 422
    assert 'data-code="invalid_expiry"' in response.content.decode()


def test_without_any_options_the_page_says_so(signed_in):
    response = signed_in.get("/options/")
    assert response.status_code == 200 and "No options" in response.content.decode()


def test_a_password_only_session_does_not_reach_the_chain(client, sample_master):
    client.force_login(User.objects.create_user("half", password="long-password-123"))
    assert client.get("/options/").status_code == 302
