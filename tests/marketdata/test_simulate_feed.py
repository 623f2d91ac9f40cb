from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.feeds.simulator import MarketSession, Simulator, black_scholes
from marketdata.models import Instrument

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 10:30 IST


def _run(seed, steps=20):
    sim = Simulator(list(Instrument.objects.all()), seed=seed)
    out = []
    for step in range(steps):
        out.extend(sim.step(now=NOW + timedelta(seconds=step / 10), seconds=0.1, rate=2000))
    return out


def test_the_same_seed_gives_the_same_market(sample_master):
    first, second = _run(seed=42), _run(seed=42)
    assert len(first) == 20 * 200
    assert first == second
    assert _run(seed=43) != first


def test_prices_start_near_the_reference_levels_and_sit_on_the_tick(sample_master):
    quotes = {q.instrument_id: q for q in _run(seed=7, steps=50)}
    reliance = Instrument.objects.get(exchange="NSE", tradingsymbol="RELIANCE")
    nifty = Instrument.objects.get(tradingsymbol="NIFTY 50")
    assert abs(quotes[reliance.pk].ltp - Decimal("1550")) < Decimal("10")
    assert abs(quotes[nifty.pk].ltp - Decimal("26000")) < Decimal("100")
    for instrument in Instrument.objects.filter(pk__in=quotes):
        quote = quotes[instrument.pk]
        assert quote.ltp % instrument.tick_size == 0
        assert quote.ts == quote.ts.astimezone(UTC)


def test_quotes_carry_five_levels_of_depth_and_open_interest_for_derivatives(sample_master):
    quotes = _run(seed=3, steps=30)
    kinds = dict(Instrument.objects.values_list("pk", "instrument_type"))
    for quote in quotes:
        if kinds[quote.instrument_id] == "INDEX":
            assert quote.bids == () and quote.volume == 0
            continue
        assert len(quote.bids) == len(quote.asks) == 5
        assert quote.bids[0].price == quote.bid <= quote.ltp <= quote.ask == quote.asks[0].price
        assert [lv.price for lv in quote.bids] == sorted((lv.price for lv in quote.bids), reverse=True)
        assert quote.volume > 0
        assert (quote.oi > 0) == (kinds[quote.instrument_id] in {"FUT", "CE", "PE"})


def test_options_are_priced_off_their_underlying(sample_master):
    sim = Simulator(list(Instrument.objects.all()), seed=5)
    call = Instrument.objects.get(tradingsymbol="NIFTY26DEC26000CE")
    put = Instrument.objects.get(tradingsymbol="NIFTY26DEC26000PE")
    fut = Instrument.objects.get(tradingsymbol="NIFTY26DECFUT")
    contracts = {c.instrument_id: c for c in sim.contracts}
    spot = sim.spot("NIFTY")
    c, p, f = (sim.fair_value(contracts[i.pk], NOW) for i in (call, put, fut))
    years = (datetime(2026, 12, 29, 10, 0, tzinfo=UTC) - NOW).total_seconds() / (365 * 86400)
    # Futures carry the spot to expiry; at the money, call - put = forward - strike, discounted.
    assert f > spot
    assert abs((c - p) - (f - 26000) * 2.718281828 ** (-0.065 * years)) < 1.0
    assert 100 < c < 1500 and 100 < p < 1500
    sim.underlyings["NIFTY"].price *= 1.02
    assert sim.fair_value(contracts[call.pk], NOW) > c
    assert sim.fair_value(contracts[put.pk], NOW) < p


def test_black_scholes_matches_a_textbook_value():
    # Hull's example: S=42, K=40, r=10 %, sigma=20 %, T=0.5 -> call 4.76, put 0.81.
    assert round(black_scholes(spot=42, strike=40, years=0.5, vol=0.2, call=True, rate=0.1), 2) == 4.76
    assert round(black_scholes(spot=42, strike=40, years=0.5, vol=0.2, call=False, rate=0.1), 2) == 0.81


def test_the_nse_session_is_closed_outside_hours_weekends_and_holidays():
    session = MarketSession(mode="nse", holidays=[date(2026, 11, 24)])
    assert session.is_open(NOW)
    assert not session.is_open(NOW.replace(hour=2))  # 07:30 IST
    assert not session.is_open(NOW.replace(hour=10, minute=1))  # 15:31 IST
    assert not session.is_open(datetime(2026, 11, 28, 5, 0, tzinfo=UTC))  # Saturday
    assert not session.is_open(datetime(2026, 11, 24, 5, 0, tzinfo=UTC))  # holiday
    assert MarketSession().is_open(datetime(2026, 11, 28, 20, 0, tzinfo=UTC))  # the default never closes


def test_bse_shares_and_mcx_futures_are_quoted_near_their_reference_levels_on_their_ticks(sample_master):
    wanted = Instrument.objects.filter(exchange__in=["BSE", "MCX"]) | Instrument.objects.filter(
        exchange="NSE", tradingsymbol="RELIANCE"
    )
    sim = Simulator(list(wanted), seed=11)
    quotes = {}
    for step in range(20):
        for quote in sim.step(now=NOW + timedelta(seconds=step / 10), seconds=0.1, rate=200):
            quotes[quote.instrument_id] = quote
    by_symbol = {(i.exchange, i.tradingsymbol): i for i in wanted}
    assert set(quotes) == {i.pk for i in wanted}
    reference = {"GOLDM26DECFUT": 130000, "SILVERM26NOVFUT": 175000, "CRUDEOIL26DECFUT": 5300}
    for symbol, level in reference.items():
        instrument = by_symbol[("MCX", symbol)]
        ltp = quotes[instrument.pk].ltp
        assert abs(ltp - level) < level * Decimal("0.02"), (symbol, ltp)  # spot carried to a near expiry
        assert ltp % instrument.tick_size == 0 and ltp == ltp.to_integral_value()
    bse, nse = by_symbol[("BSE", "RELIANCE")], by_symbol[("NSE", "RELIANCE")]
    assert abs(quotes[bse.pk].ltp - Decimal("1550")) < Decimal("10")
    assert abs(quotes[bse.pk].ltp - quotes[nse.pk].ltp) < Decimal("2")  # one underlying moves both
