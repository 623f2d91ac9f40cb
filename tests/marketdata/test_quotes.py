from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata import quotes
from marketdata.listeners import dispatch, register_tick_listener, unregister_tick_listener
from marketdata.quotes import DepthLevel, Quote


def _quote(instrument_id=7, ltp="2450.35"):
    return Quote(
        instrument_id=instrument_id,
        ltp=Decimal(ltp),
        ts=datetime(2026, 11, 25, 4, 0, tzinfo=UTC),
        bid=Decimal("2450.30"),
        ask=Decimal("2450.40"),
        close=Decimal("2400"),
        bids=(DepthLevel(Decimal("2450.30"), 120, 3),),
        asks=(DepthLevel(Decimal("2450.40"), 80, 2),),
    )


def test_a_quote_survives_its_wire_form_exactly():
    quote = _quote()
    assert Quote.from_json(quote.to_json()) == quote
    assert quote.change == Decimal("50.35")


def test_the_memory_store_keeps_the_latest_quote_per_instrument():
    store = quotes._MemoryStore()
    store.set_many([_quote(ltp="1"), _quote(ltp="2"), _quote(instrument_id=8, ltp="3")])
    got = store.get_many([7, 8, 9])
    assert {k: v.ltp for k, v in got.items()} == {7: Decimal("2"), 8: Decimal("3")}


@pytest.mark.redis
def test_the_redis_store_is_shared_through_redis(settings):
    store = quotes._RedisStore(settings.REDIS_URL)
    store.clear()
    try:
        store.set_many([_quote(ltp="10.05")])
        other_process_view = quotes._RedisStore(settings.REDIS_URL)
        assert other_process_view.get_many([7])[7] == _quote(ltp="10.05")
        assert other_process_view.get_many([]) == {}
    finally:
        store.clear()


def test_a_failing_listener_does_not_stop_the_others(caplog):
    seen = []
    register_tick_listener("broken", lambda batch, passed: 1 / 0)
    register_tick_listener("good", lambda batch, passed: seen.extend(batch))
    try:
        dispatch([_quote()])
    finally:
        unregister_tick_listener("broken")
        unregister_tick_listener("good")
    assert seen == [_quote()]
    assert "tick listener broken failed" in caplog.text


def _unreachable_redis_url() -> str:
    import socket

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_an_unreachable_redis_store_says_so_rather_than_answering_no_price():
    from marketdata.errors import QuotesUnavailable

    store = quotes._RedisStore(_unreachable_redis_url())
    with pytest.raises(QuotesUnavailable) as error:
        store.get_many([7])
    assert error.value.status == 503 and error.value.code == "quotes_unavailable"
    with pytest.raises(QuotesUnavailable):
        store.set_many([_quote()])
    assert store.get_many([]) == {}  # nothing asked, nothing to reach
