"""Client-side rate limits: the generic limiter (memory and Redis) and Kite's table applied by the client.

In-process tests run on a clock that moves only when the limiter sleeps, so nothing waits and no
assertion depends on timing."""

from __future__ import annotations

import logging
import socket
import uuid
from decimal import Decimal

import pytest
from django.conf import settings

from brokers.adapters.base import BrokerNotSent, BrokerRateLimited
from brokers.rate_limits import (
    LocalRateLimiter,
    RateLimit,
    RedisRateLimiter,
    get_rate_limiter,
    use_rate_limiter,
)
from kite.client import KiteClient
from kite.rate_limits import LIMITS, EndpointClass
from kite.records import KiteOrderParams
from tests.kite import fake_kite as fk
from tests.kite.conftest import FakeClock

ORDER_PLACE = LIMITS[EndpointClass.ORDER_PLACE]
ORDER_WRITE = LIMITS[EndpointClass.ORDER_WRITE]


def test_the_kite_table_has_the_documented_limits():
    def per(endpoint):
        return {(limit.limit, limit.window) for limit in LIMITS[endpoint]}

    assert per(EndpointClass.QUOTE) == {(1, 1.0)}
    assert per(EndpointClass.HISTORICAL) == {(3, 1.0)}
    assert per(EndpointClass.OTHER) == {(10, 1.0)}
    assert per(EndpointClass.ORDER_PLACE) == {(10, 1.0), (400, 60.0), (5000, 86_400.0)}
    assert per(EndpointClass.ORDER_WRITE) == {(10, 1.0), (400, 60.0)}


def test_a_request_over_the_per_second_limit_waits_for_room(clock, limiter):
    for _ in range(10):
        limiter.acquire("acct", ORDER_PLACE)
    assert clock.slept == []

    limiter.acquire("acct", ORDER_PLACE)

    assert len(clock.slept) == 1 and 0 < clock.slept[0] <= 1.0


def test_a_request_that_would_wait_too_long_is_refused_without_waiting():
    clock = FakeClock()
    limiter = LocalRateLimiter(clock=clock.time, sleep=clock.sleep, max_wait=0.25)
    limiter.acquire("acct", (RateLimit("quote", 1, 1.0),))

    with pytest.raises(BrokerRateLimited) as caught:
        limiter.acquire("acct", (RateLimit("quote", 1, 1.0),))

    assert isinstance(caught.value, BrokerNotSent)
    assert caught.value.extra["limit"] == "quote"
    assert clock.slept == []


def test_the_per_minute_order_cap(clock, limiter):
    for _ in range(400):
        limiter.acquire("acct", ORDER_PLACE)
        clock.now += 0.1  # 10 a second: the per-second limit never binds
    with pytest.raises(BrokerRateLimited) as caught:
        limiter.acquire("acct", ORDER_WRITE)  # a modification counts against the same minute
    assert caught.value.extra["limit"] == "orders_minute"

    clock.now += 60
    limiter.acquire("acct", ORDER_PLACE)


def test_the_daily_order_cap_counts_placements_only(clock, limiter):
    for _ in range(5000):
        limiter.acquire("acct", ORDER_PLACE)
        clock.now += 0.151  # under 10/s and 400/min
    with pytest.raises(BrokerRateLimited) as caught:
        limiter.acquire("acct", ORDER_PLACE)
    assert caught.value.extra["limit"] == "orders_day"

    limiter.acquire("acct", ORDER_WRITE)  # modifying and cancelling still work


def test_accounts_and_endpoint_classes_count_apart(clock, limiter):
    limiter.acquire("a", LIMITS[EndpointClass.QUOTE])
    limiter.acquire("b", LIMITS[EndpointClass.QUOTE])
    for _ in range(10):
        limiter.acquire("a", LIMITS[EndpointClass.OTHER])
        limiter.acquire("a", ORDER_PLACE)
    assert clock.slept == []


def test_a_refused_request_is_not_counted(clock):
    limiter = LocalRateLimiter(clock=clock.time, sleep=clock.sleep, max_wait=0)
    limits = (RateLimit("fast", 2, 1.0), RateLimit("slow", 5, 60.0))
    limiter.acquire("acct", limits)
    limiter.acquire("acct", limits)
    for _ in range(3):
        with pytest.raises(BrokerRateLimited):
            limiter.acquire("acct", limits)
    clock.now += 1
    limiter.acquire("acct", limits)
    limiter.acquire("acct", limits)
    clock.now += 1
    limiter.acquire("acct", limits)  # the fifth: the refused three never reached the minute's count
    clock.now += 1
    with pytest.raises(BrokerRateLimited) as caught:
        limiter.acquire("acct", limits)
    assert caught.value.extra["limit"] == "slow"


def test_the_client_counts_quotes_together_and_waits(fake_kite, clock, kite):
    kite.quote(["NSE:INFY"])
    kite.ltp(["NSE:INFY"])
    kite.ohlc(["NSE:INFY"])

    assert len(clock.slept) == 2  # /quote, /quote/ltp and /quote/ohlc share 1 a second
    assert fake_kite.count("GET", "/quote/ltp") == fake_kite.count("GET", "/quote/ohlc") == 1


def test_the_client_refuses_without_sending_when_over_the_limit(fake_kite, http):
    clock = FakeClock()
    limiter = LocalRateLimiter(clock=clock.time, sleep=clock.sleep, max_wait=0)
    kite = KiteClient(fk.API_KEY, fk.ACCESS_TOKEN, root=fake_kite.url, limiter=limiter, http=http, limit_key="acct-1")
    params = KiteOrderParams("NSE", "INFY", "BUY", 1, "MIS", "LIMIT", price=Decimal("1490"))
    for _ in range(10):
        kite.place_order("regular", params)

    with pytest.raises(BrokerRateLimited):
        kite.place_order("regular", params)
    with pytest.raises(BrokerRateLimited):
        kite.cancel_order("regular", next(iter(fake_kite.orders)))

    assert fake_kite.count("POST", "/orders/regular") == 10
    assert len(fake_kite.orders) == 10
    kite.orders()  # other endpoints have their own counter


def test_the_default_limiter_follows_redis_url(settings):
    use_rate_limiter(None)
    try:
        settings.REDIS_URL = None
        assert isinstance(get_rate_limiter(), LocalRateLimiter)
    finally:
        use_rate_limiter(None)


# --- Redis ---------------------------------------------------------------------------------------

RUN_PREFIX = f"test:ratelimit:{uuid.uuid4().hex}:"


@pytest.fixture
def redis_prefix(request) -> str:
    return f"{RUN_PREFIX}{request.node.name}:"


def redis_limiter(prefix: str, **options) -> RedisRateLimiter:
    return RedisRateLimiter(settings.REDIS_URL, prefix=prefix, **options)


@pytest.mark.redis
def test_redis_windows_are_shared_between_processes(redis_prefix):
    refused_sleeps: list[float] = []
    one = redis_limiter(redis_prefix, sleep=refused_sleeps.append)
    other = redis_limiter(redis_prefix, sleep=refused_sleeps.append)  # another process's limiter
    limits = (RateLimit("orders_minute", 3, 60.0),)

    one.acquire("acct", limits)
    other.acquire("acct", limits)
    one.acquire("acct", limits)
    with pytest.raises(BrokerRateLimited) as caught:
        other.acquire("acct", limits)

    assert caught.value.extra["limit"] == "orders_minute"
    assert refused_sleeps == []  # a minute's wait is over the bound: refused at once
    other.acquire("another-account", limits)


@pytest.mark.redis
def test_redis_limiter_waits_briefly_for_room(redis_prefix):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        import time

        slept.append(seconds)
        time.sleep(seconds)

    limiter = redis_limiter(redis_prefix, sleep=sleep)
    limits = (RateLimit("quote", 1, 1.0),)  # a second's window: the next call must wait for room
    limiter.acquire("acct", limits)
    limiter.acquire("acct", limits)

    assert len(slept) >= 1 and all(0 < s <= 1.0 for s in slept)


@pytest.mark.redis
def test_redis_counts_all_limits_of_a_request_atomically(redis_prefix):
    import redis

    limiter = redis_limiter(redis_prefix, max_wait=0)
    limits = (RateLimit("fast", 2, 5.0), RateLimit("slow", 3, 60.0))
    limiter.acquire("acct", limits)
    limiter.acquire("acct", limits)
    with pytest.raises(BrokerRateLimited):
        limiter.acquire("acct", limits)

    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.zcard(f"{redis_prefix}{{acct}}:fast") == 2
    assert client.zcard(f"{redis_prefix}{{acct}}:slow") == 2  # the refused request was not counted
    assert 0 < client.pttl(f"{redis_prefix}{{acct}}:slow") <= 61_000
    client.delete(*client.keys(f"{redis_prefix}*"))


@pytest.mark.redis
def test_the_client_over_redis_refuses_without_sending(fake_kite, http, redis_prefix):
    limiter = redis_limiter(redis_prefix, max_wait=0)
    kite = KiteClient(fk.API_KEY, fk.ACCESS_TOKEN, root=fake_kite.url, limiter=limiter, http=http)

    kite.quote(["NSE:INFY"])
    with pytest.raises(BrokerRateLimited):
        kite.quote(["NSE:INFY"])

    assert fake_kite.count("GET", "/quote") == 1


@pytest.mark.redis
def test_the_default_limiter_is_redis_when_configured():
    use_rate_limiter(None)
    try:
        assert isinstance(get_rate_limiter(), RedisRateLimiter)
    finally:
        use_rate_limiter(None)


def test_an_unreachable_redis_falls_back_to_counting_in_process(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = FakeClock()
    fallback = LocalRateLimiter(clock=clock.time, sleep=clock.sleep, max_wait=0)
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0", fallback=fallback, max_wait=0)
    caplog.set_level(logging.WARNING, logger="brokers.rate_limits")

    limiter.acquire("acct", (RateLimit("quote", 1, 1.0),))
    with pytest.raises(BrokerRateLimited):
        limiter.acquire("acct", (RateLimit("quote", 1, 1.0),))

    assert "Redis unreachable" in caplog.text
