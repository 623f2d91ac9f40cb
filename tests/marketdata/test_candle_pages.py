"""Pages of candle history before a time (``before``/``limit``): the chart's first page and each page
further back, whole buckets at every timeframe, fewer bars once the stored history begins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import User
from marketdata.candles import Bar
from marketdata.errors import InvalidRange
from marketdata.models import Instrument
from marketdata.selectors import MAX_PAGE, candle_history, candle_history_before
from marketdata.services import candle_upsert_many
from tests.marketdata.bars import bar_values, session_minutes

pytestmark = pytest.mark.django_db
DAYS = (date(2026, 1, 5), date(2026, 1, 9))  # five sessions, 1875 minutes


@pytest.fixture
def infy():
    instrument = Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="INFY", exchange_token="1594", instrument_type="EQ", name="Infosys"
    )
    minutes = session_minutes(*DAYS)
    candle_upsert_many(bars=[Bar(instrument.pk, ts, *bar_values(i)) for i, ts in enumerate(minutes)])
    return instrument


def _all(instrument, timeframe):
    """The whole history at ``timeframe``, read an IST day at a time (a range query's bound)."""
    rows = []
    for day in range(4, 10):
        start = datetime(2026, 1, day, tzinfo=UTC) - timedelta(hours=5, minutes=30)
        end = start + timedelta(days=1)
        rows += candle_history(instrument_id=instrument.pk, timeframe=timeframe, start=start, end=end)
    return rows


@pytest.mark.parametrize("timeframe, limit", [("1m", 500), ("15m", 30), ("1h", 9), ("1d", 2)])
def test_scrolling_back_page_by_page_gives_the_whole_history_once(infy, timeframe, limit):
    pages, before = [], datetime(2026, 2, 1, tzinfo=UTC)
    while True:
        page = candle_history_before(instrument_id=infy.pk, timeframe=timeframe, before=before, limit=limit)
        if page:
            pages.insert(0, page)
        if len(page) < limit:
            break
        before = page[0].ts

    assert [row for page in pages for row in page] == _all(infy, timeframe)
    assert all(len(page) == limit for page in pages[1:])


def test_the_first_page_is_the_latest_bars(infy):
    page = candle_history_before(
        instrument_id=infy.pk, timeframe="1m", before=datetime(2026, 2, 1, tzinfo=UTC), limit=375
    )

    assert [row.ts for row in page] == session_minutes(DAYS[1], DAYS[1])


def test_a_page_is_bounded():
    with pytest.raises(InvalidRange):
        candle_history_before(
            instrument_id=1, timeframe="1m", before=datetime(2026, 1, 1, tzinfo=UTC), limit=MAX_PAGE + 1
        )


@pytest.fixture
def trader(client, otp_login):
    user = User.objects.create_user("trader", password="x-long-password-1")
    otp_login(client, user)
    return user


def test_the_api_serves_a_page_before_a_time(client, trader, infy):
    body = client.get(
        f"/api/marketdata/candles/{infy.pk}", {"timeframe": "1m", "before": "2026-01-09T09:20:00+05:30", "limit": 3}
    ).json()

    assert [row["ts"][:16] for row in body] == ["2026-01-09T03:47", "2026-01-09T03:48", "2026-01-09T03:49"]
    assert Decimal(body[0]["open"]) == bar_values(4 * 375 + 2)[0]


@pytest.mark.parametrize(
    "query, code",
    [
        ({"limit": 0}, None),
        ({"limit": MAX_PAGE + 1}, None),
        ({"limit": 5, "start": "2026-01-05T09:15:00+05:30"}, "invalid_range"),
        ({"before": "0001-01-01T00:00:00+00:00", "limit": 5}, "invalid_range"),
        ({"before": "2026-01-05T09:15:00", "limit": 5}, "invalid_range"),
    ],
)
def test_a_bad_page_request_is_a_4xx_with_a_code(client, trader, infy, query, code):
    response = client.get(f"/api/marketdata/candles/{infy.pk}", query)

    assert 400 <= response.status_code < 500
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    if code:
        assert body["code"] == code
