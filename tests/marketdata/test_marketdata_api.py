from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import User
from marketdata.candles import Bar
from marketdata.models import Instrument
from marketdata.quotes import DepthLevel, Quote, set_quotes
from marketdata.services import candle_upsert_many

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 25, 3, 45, tzinfo=UTC)


@pytest.fixture
def trader(client, otp_login):
    user = User.objects.create_user("trader", password="x-long-password-1")
    otp_login(client, user)
    return user


@pytest.fixture
def reliance():
    return Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="RELIANCE", exchange_token="2885", instrument_type="EQ",
        name="Reliance Industries",
    )  # fmt: skip


def test_market_data_needs_a_signed_in_caller(client, reliance):
    assert client.get("/api/marketdata/instruments").status_code == 401
    assert client.get(f"/api/marketdata/quotes?instruments={reliance.pk}").status_code == 401


def test_instruments_are_searchable_by_symbol_or_name(client, trader, reliance):
    body = client.get("/api/marketdata/instruments?q=relia").json()
    assert [i["tradingsymbol"] for i in body] == ["RELIANCE"]
    assert client.get("/api/marketdata/instruments?exchange=NFO").json() == []
    assert client.get("/api/marketdata/instruments/999999").json()["code"] == "unknown_instrument"


def test_quotes_come_from_the_quote_store_by_id_or_symbol(client, trader, reliance):
    set_quotes(
        [
            Quote(
                instrument_id=reliance.pk,
                ltp=Decimal("1550.05"),
                ts=T0,
                bid=Decimal("1550"),
                close=Decimal("1500"),
                bids=(DepthLevel(Decimal("1550"), 100, 2),),
            )
        ]
    )
    body = client.get("/api/marketdata/quotes?instruments=NSE:RELIANCE").json()
    assert body[0]["ltp"] == "1550.05" and body[0]["change"] == "50.05"
    assert body[0]["bids"] == [{"price": "1550", "quantity": 100, "orders": 2}]
    response = client.get(f"/api/marketdata/quotes?instruments={reliance.pk},NSE:NOPE")
    assert response.status_code == 404
    assert response.json()["extra"] == {"instruments": ["NSE:NOPE"]}


def test_candles_are_served_at_the_requested_timeframe(client, trader, reliance):
    candle_upsert_many(
        bars=[
            Bar(reliance.pk, T0 + timedelta(minutes=m), Decimal(100 + m), Decimal(101 + m), Decimal(99 + m),
                Decimal("100.5") + m, 10, 0)
            for m in range(6)
        ]
    )  # fmt: skip
    window = {"timeframe": "5m", "start": "2026-11-25T09:15:00+05:30", "end": "2026-11-25T10:00:00+05:30"}
    body = client.get(f"/api/marketdata/candles/{reliance.pk}", window).json()
    assert [(c["ts"][:16], *(Decimal(c[k]) for k in ("open", "high", "low", "close")), c["volume"]) for c in body] == [
        ("2026-11-25T03:45", 100, 105, 99, Decimal("104.5"), 50),
        ("2026-11-25T03:50", 105, 106, 104, Decimal("105.5"), 10),
    ]
    bad = client.get(f"/api/marketdata/candles/{reliance.pk}?timeframe=2h")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_timeframe"
    assert client.get("/api/marketdata/candles/999999").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "end=0001-01-01T00:01:00Z",
        "start=0001-01-01T00:00:00Z",
        "end=9999-12-31T23:59:59Z",
        "start=1900-01-01T00:00:00%2B05:30&end=1900-01-02T00:00:00%2B05:30",
    ],
)
def test_candle_times_outside_any_market_are_a_400_not_an_overflow(client, trader, reliance, query):
    response = client.get(f"/api/marketdata/candles/{reliance.pk}?{query}")
    assert response.status_code == 400 and response.json()["code"] == "invalid_range"
