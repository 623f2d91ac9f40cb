"""The chart's indicator endpoint: lines aligned to the candle API's page, equal to talipp's (the library
the strategies use) and to hand-computed values, and a 4xx with a code for every bad query."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from talipp.indicators import BB, EMA, MACD, RSI, SuperTrend
from talipp.ohlcv import OHLCV

from accounts.models import User
from marketdata.models import Candle, Instrument
from marketdata.services import candle_partitions_ensure

pytestmark = pytest.mark.django_db

SESSION_OPEN = datetime(2026, 11, 24, 3, 45, tzinfo=UTC)  # 09:15 IST


@pytest.fixture
def signed_in(client, otp_login):
    otp_login(client, User.objects.create_user("trader", password="long-password-123"))
    return client


@pytest.fixture
def bars(db):
    """Two sessions of 1-minute bars (375 each) of a random walk, seeded."""
    candle_partitions_ensure(months=[date(2026, 11, 1)])
    instrument = Instrument.objects.create(
        exchange="NSE",
        tradingsymbol="CHARTY",
        name="Charty",
        instrument_type="EQ",
        segment="NSE",
        tick_size=Decimal("0.05"),
        lot_size=1,
    )
    rng, price, rows = random.Random(7), 1000.0, []
    for day in range(2):
        for minute in range(375):
            ts = SESSION_OPEN + timedelta(days=day, minutes=minute)
            o = price
            price = round(price + rng.uniform(-2, 2), 2)
            h, lo = round(max(o, price) + rng.uniform(0, 1), 2), round(min(o, price) - rng.uniform(0, 1), 2)
            rows.append(
                Candle(
                    instrument=instrument,
                    ts=ts,
                    open=Decimal(str(o)),
                    high=Decimal(str(h)),
                    low=Decimal(str(lo)),
                    close=Decimal(str(price)),
                    volume=rng.randint(100, 5000),
                )
            )
    Candle.objects.bulk_create(rows)
    return instrument, rows


def _get(client, instrument_id, **query):
    query.setdefault("before", "2026-11-26T00:00:00+00:00")
    return client.get(f"/chart/{instrument_id}/indicators/?{urlencode(query)}")


def _ohlcv(rows):
    return [OHLCV(float(r.open), float(r.high), float(r.low), float(r.close), float(r.volume)) for r in rows]


def test_lines_are_aligned_to_the_candle_page_and_equal_talipps_over_the_whole_history(signed_in, bars):
    instrument, rows = bars
    response = _get(
        signed_in,
        instrument.pk,
        timeframe="1m",
        limit="300",
        studies="ema:20,rsi:14,bb:20:2,macd:12:26:9,supertrend:10:3",
    )
    assert response.status_code == 200
    body = response.json()
    candles = signed_in.get(
        f"/api/marketdata/candles/{instrument.pk}?timeframe=1m&limit=300&before=2026-11-26T00:00:00%2B00:00"
    ).json()
    assert [datetime.fromisoformat(t) for t in body["ts"]] == [
        datetime.fromisoformat(c["ts"].replace("Z", "+00:00")) for c in candles
    ]
    closes = [float(r.close) for r in rows]
    page = slice(len(rows) - 300, None)
    studies = body["studies"]
    assert studies["ema:20"]["overlay"] and not studies["rsi:14"]["overlay"]
    # A warm-up of earlier bars is read, so the page's values equal those over the whole stored history.
    assert studies["ema:20"]["lines"]["value"] == pytest.approx(list(EMA(20, input_values=closes))[page])
    assert studies["rsi:14"]["lines"]["value"] == pytest.approx(list(RSI(14, input_values=closes))[page], rel=1e-6)
    assert studies["bb:20:2"]["lines"]["upper"] == pytest.approx(
        [v.ub for v in list(BB(20, 2, input_values=closes))[page]]
    )
    assert studies["macd:12:26:9"]["lines"]["signal"] == pytest.approx(
        [v.signal for v in list(MACD(12, 26, 9, input_values=closes))[page]]
    )
    assert studies["supertrend:10:3"]["lines"]["value"] == pytest.approx(
        [v.value for v in list(SuperTrend(10, 3, input_values=_ohlcv(rows)))[page]]
    )


def test_sma_and_the_session_anchored_vwap_match_hand_computed_values(signed_in, bars):
    instrument, rows = bars
    body = _get(signed_in, instrument.pk, timeframe="1m", limit="750", studies="sma:3,vwap").json()
    sma, vwap = body["studies"]["sma:3"]["lines"]["value"], body["studies"]["vwap"]["lines"]["value"]
    assert sma[:2] == [None, None]
    assert sma[2] == pytest.approx(float(rows[0].close + rows[1].close + rows[2].close) / 3)

    def typical(r):
        return float(r.high + r.low + r.close) / 3

    # Second session's first bar: the sum starts again at 09:15 IST, so the VWAP is that bar's typical price.
    assert vwap[375] == pytest.approx(typical(rows[375]))
    second = rows[375:377]
    assert vwap[376] == pytest.approx(sum(typical(r) * r.volume for r in second) / sum(r.volume for r in second))
    first = rows[:375]
    assert vwap[374] == pytest.approx(sum(typical(r) * r.volume for r in first) / sum(r.volume for r in first))


def test_a_higher_timeframe_page_and_a_page_further_back(signed_in, bars):
    instrument, _ = bars
    body = _get(signed_in, instrument.pk, timeframe="5m", limit="50", studies="ema:5").json()
    assert len(body["ts"]) == 50 and len(body["studies"]["ema:5"]["lines"]["value"]) == 50
    earlier = _get(signed_in, instrument.pk, timeframe="5m", limit="50", before=body["ts"][0], studies="ema:5").json()
    assert earlier["ts"][-1] < body["ts"][0]


def test_an_unknown_instrument_is_a_404_with_a_code(signed_in, bars):
    response = _get(signed_in, 999_999, studies="ema:20")
    assert response.status_code == 404 and response.json()["code"] == "unknown_instrument"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"studies": "wma:20"}, "unknown_study"),
        ({"studies": "ema:0"}, "invalid_period"),
        ({"studies": "ema:501"}, "invalid_period"),
        ({"studies": "ema:2.5"}, "invalid_period"),
        ({"studies": "bb:20:NaN"}, "invalid_period"),
        ({"studies": "bb:20:1e9"}, "invalid_period"),
        ({"studies": "macd:26:12:9"}, "invalid_period"),
        ({"studies": "ema:1:2"}, "invalid_period"),
        ({"studies": ""}, "no_studies"),
        ({"studies": ",".join(f"ema:{n}" for n in range(1, 10))}, "too_many_studies"),
        ({"studies": "ema:20", "timeframe": "2m"}, "invalid_timeframe"),
        ({"studies": "ema:20", "limit": "0"}, "invalid_limit"),
        ({"studies": "ema:20", "limit": "99999999999999999999"}, "invalid_limit"),
        ({"studies": "ema:20", "before": "yesterday"}, "invalid_before"),
        ({"studies": "ema:20", "before": "2026-11-25T09:15:00"}, "invalid_before"),
    ],
)
def test_a_bad_query_is_a_422_naming_what_is_wrong(signed_in, bars, query, code):
    response = _get(signed_in, bars[0].pk, **query)
    assert response.status_code == 422
    assert response.json()["code"] == code and response.json()["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    studies=st.text(max_size=40),
    timeframe=st.sampled_from(["1m", "5m", "1d", "", "x"]) | st.text(max_size=5),
    limit=st.sampled_from(["10", "-1", "1e3", ""]) | st.text(max_size=8),
    before=st.sampled_from(["", "2026-11-25T04:00:00Z", "0001-01-01T00:00:00+00:00"]) | st.text(max_size=30),
)
def test_any_query_string_is_answered_with_json_never_a_500(signed_in, bars, studies, timeframe, limit, before):
    query = {"studies": studies, "timeframe": timeframe, "limit": limit, "before": before}
    response = signed_in.get(f"/chart/{bars[0].pk}/indicators/?{urlencode(query)}")
    assert response.status_code in (200, 400, 404, 422)
    if any("\x00" in value for value in query.values()):
        # The site's request guard refuses a NUL before any view runs (an HTML page outside /api/).
        assert response.status_code == 400 and "nul_byte" in response.content.decode()
        return
    body = response.json()
    assert "studies" in body or {"code", "message"} <= body.keys()
