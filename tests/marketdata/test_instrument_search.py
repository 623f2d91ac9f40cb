"""Symbol search ranks the instrument a trader means first: the exact symbol, then equities and indices,
then futures by expiry, then options by expiry and distance from the money. The watchlist's search and
the REST API share one search."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from marketdata.models import Instrument
from marketdata.quotes import Quote, set_quotes
from marketdata.selectors import instrument_search
from terminal.services.watchlists import watchlist_ensure_default

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


@pytest.fixture
def trader(client, otp_login):
    user = User.objects.create_user("searcher", password="x-long-password-1")
    otp_login(client, user)
    return user


def _symbols(query, **filters):
    return [i.tradingsymbol for i in instrument_search(query=query, **filters)]


def _quote(symbol, ltp, exchange="NSE"):
    instrument = Instrument.objects.get(exchange=exchange, tradingsymbol=symbol)
    set_quotes([Quote(instrument_id=instrument.pk, ltp=Decimal(ltp), ts=NOW)])


def _kinds(instruments):
    return [i.instrument_type for i in instruments]


def test_nifty_lists_the_index_and_the_near_month_future_before_any_option(sample_master):
    results = list(instrument_search(query="NIFTY", limit=60))
    assert results[0].tradingsymbol == "NIFTY 50"
    kinds = _kinds(results)
    first_option = min(kinds.index("CE"), kinds.index("PE"))
    assert "NIFTY26DECFUT" in [i.tradingsymbol for i in results[:first_option]]
    # Classes never interleave: spot, then futures, then options.
    order = {"INDEX": 0, "EQ": 0, "FUT": 1, "CE": 2, "PE": 2}
    assert [order[k] for k in kinds] == sorted(order[k] for k in kinds)
    # The NIFTY contracts before those of indices that merely contain the word.
    assert next(i.tradingsymbol for i in results if i.instrument_type == "FUT") == "NIFTY26DECFUT"
    assert results[first_option].underlying == "NIFTY"


def test_hdfc_lists_hdfcbank_before_any_option(sample_master):
    symbols = _symbols("HDFC")
    assert symbols[:2] == ["HDFCBANK", "HDFCLIFE"]
    assert symbols[2:4] == ["HDFCBANK26DECFUT", "HDFCLIFE26DECFUT"]


def test_the_api_lists_infy_first(client, trader, sample_master):
    body = client.get("/api/marketdata/instruments?q=INFY").json()
    assert (body[0]["exchange"], body[0]["tradingsymbol"], body[0]["instrument_type"]) == ("NSE", "INFY", "EQ")
    assert body[1]["tradingsymbol"] == "INFY26DECFUT"
    assert client.get("/api/marketdata/instruments?q=infosys").json()[0]["tradingsymbol"] == "INFY"


def test_options_come_nearest_the_underlyings_last_price_first(sample_master):
    _quote("NIFTY 50", "26180")
    options = [i for i in instrument_search(query="NIFTY", limit=100) if i.instrument_type in {"CE", "PE"}]
    assert {i.strike for i in options[:2]} == {Decimal("26200")}
    assert {i.strike for i in options[2:4]} == {Decimal("26150")}
    distances = [abs(i.strike - Decimal("26180")) for i in options if i.underlying == "NIFTY"]
    assert distances == sorted(distances)


def test_without_a_quote_options_come_nearest_the_middle_of_their_strikes_first(sample_master):
    options = [i for i in instrument_search(query="RELIANCE") if i.instrument_type in {"CE", "PE"}]
    # The sample lists five strikes each side of 1,560 (1,550 rounded to the 20 step): 1,460 ... 1,660.
    assert {i.strike for i in options[:2]} == {Decimal("1560")}
    assert {i.strike for i in options[2:6]} == {Decimal("1540"), Decimal("1580")}


def test_filters_still_narrow_the_search(sample_master):
    assert set(_kinds(instrument_search(query="NIFTY", instrument_type="fut"))) == {"FUT"}
    assert {i.underlying for i in instrument_search(underlying="banknifty", limit=500)} == {"BANKNIFTY"}
    assert _symbols("INFY", exchange="NFO")[0] == "INFY26DECFUT"


def _generated_master(spots: int = 300) -> None:
    """A master shaped like NSE + NFO, about 30,000 contracts: weekly NIFTY options over eight expiries,
    three monthly expiries for BANKNIFTY and ``spots`` stocks (each with futures and options), and
    equities without derivatives whose names contain common words."""
    first = date(2026, 12, 1)
    rows: list[Instrument] = []

    def add(symbol, kind, *, exchange="NFO", name="", underlying="", expiry=None, strike=None):
        rows.append(
            Instrument(
                exchange=exchange,
                segment=exchange,
                tradingsymbol=symbol,
                exchange_token=str(len(rows) + 1),
                name=name,
                instrument_type=kind,
                underlying=underlying,
                expiry=expiry,
                strike=strike,
            )
        )

    def chain(underlying, expiry, centre, step, each_side):
        add(f"{underlying}{expiry:%y%m%d}FUT", "FUT", name=underlying, underlying=underlying, expiry=expiry)
        for k in range(-each_side, each_side + 1):
            strike = Decimal(centre + k * step)
            for kind in ("CE", "PE"):
                add(f"{underlying}{expiry:%y%m%d}{strike}{kind}", kind, name=underlying, underlying=underlying,
                    expiry=expiry, strike=strike)  # fmt: skip

    add("NIFTY 50", "INDEX", exchange="NSE", name="NIFTY 50", underlying="NIFTY")
    add("NIFTY BANK", "INDEX", exchange="NSE", name="NIFTY BANK", underlying="BANKNIFTY")
    for week in range(8):
        chain("NIFTY", first + timedelta(days=7 * week), 26000, 50, 60)
    for month in range(3):
        chain("BANKNIFTY", first + timedelta(days=28 * month + 27), 59000, 100, 50)
    for n in range(spots):
        symbol = f"STK{n:03d}"
        add(symbol, "EQ", exchange="NSE", name=f"Stock {n} Industries", underlying=symbol)
        for month in range(3):
            chain(symbol, first + timedelta(days=28 * month + 27), 1000, 10, 7)
    for n in range(2000):
        add(f"NIFTYETF{n:03d}" if n < 5 else f"PLAIN{n}", "EQ", exchange="NSE", name=f"Plain company {n}")
    Instrument.objects.bulk_create(rows, batch_size=2000)


def test_on_a_large_master_the_ranking_holds_in_a_bounded_number_of_queries(sample_master):
    Instrument.objects.all().delete()
    _generated_master()
    assert Instrument.objects.count() > 30_000
    _quote("NIFTY 50", "26333")
    with CaptureQueriesContext(connection) as queries:
        results = list(instrument_search(query="NIFTY", limit=50))
    assert len(queries) <= 3  # the option chains' centres, their spots, the search itself
    symbols = [i.tradingsymbol for i in results]
    assert symbols[:2] == ["NIFTY 50", "NIFTY BANK"]
    assert symbols[2:7] == [f"NIFTYETF{n:03d}" for n in range(5)]
    futures = [i for i in results if i.instrument_type == "FUT"]
    assert [f.underlying for f in futures[:8]] == ["NIFTY"] * 8
    assert [f.expiry for f in futures[:8]] == sorted(f.expiry for f in futures[:8])
    options = [i for i in results if i.instrument_type in {"CE", "PE"}]
    assert options and {o.expiry for o in options} == {date(2026, 12, 1)}
    assert {o.strike for o in options[:2]} == {Decimal("26350")}
    stock = [i.tradingsymbol for i in instrument_search(query="stk042", limit=3)]
    assert stock == ["STK042", "STK042261228FUT", "STK042270125FUT"]


def _found_nothing_or_refused(response) -> bool:
    """An empty result, or a 4xx that names its reason (a NUL byte is refused before any view runs)."""
    if response.status_code == 200:
        return response.json() == [] if response["Content-Type"].startswith("application/json") else True
    return 400 <= response.status_code < 500


def test_bad_input_finds_nothing_rather_than_failing(client, trader, sample_master):
    for params in ({"q": "NIF\x00TY"}, {"q": "N" * 10_000}, {"exchange": "NS\x00E"}, {"q": "%"}, {"q": "_"}):
        response = client.get("/api/marketdata/instruments", params)
        assert _found_nothing_or_refused(response), params
        if response.status_code != 200:
            assert response.json()["code"]
    for query in ("NIF\x00TY", "N" * 10_000):
        assert list(instrument_search(query=query)) == []
    watchlist = watchlist_ensure_default(user=trader)
    for query in ("INF\x00Y", "%", "N" * 10_000):
        response = client.get(f"/watchlists/{watchlist.pk}/search/", {"q": query}, headers={"HX-Request": "true"})
        assert _found_nothing_or_refused(response) and 'name="instrument"' not in response.content.decode()


@pytest.mark.parametrize("query", ["NIFTY", "HDFC", "INFY", "bank", "26DEC"])
def test_the_watchlist_search_and_the_api_list_the_same_instruments_in_the_same_order(
    client, trader, sample_master, query
):
    watchlist = watchlist_ensure_default(user=trader)
    page = client.get(f"/watchlists/{watchlist.pk}/search/", {"q": query}, headers={"HX-Request": "true"})
    api = client.get("/api/marketdata/instruments", {"q": query, "limit": 20}).json()
    listed = [int(pk) for pk in re.findall(r'name="instrument" value="(\d+)"', page.content.decode())]
    assert listed == [i["id"] for i in api]
    assert listed
