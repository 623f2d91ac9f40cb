from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.models import Order
from orders.services import place_order
from rms import throttle
from rms.errors import RiskRejected
from tests.trading_world import World


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ops_world(db, settings):
    settings.RMS_DEFAULT_OPS_LIMIT = 10
    world = World()
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    return world


def test_fifty_orders_in_one_second_give_ten_accepted_and_forty_rejected_all_audited(ops_world):
    clock = FrozenClock()
    throttle.use(throttle.LocalThrottle(clock=clock))
    accepted, rejected = [], []
    for i in range(50):
        clock.now = 1000.0 + i * 0.019  # all 50 inside 0.95 s
        try:
            accepted.append(
                place_order(
                    actor=ops_world.trader,
                    account=ops_world.account,
                    request=ops_world.request(ops_world.equity, price=Decimal("990")),
                    source="strategy",
                )
            )
        except RiskRejected as error:
            assert error.code == "orders_per_second" and error.status == 429
            rejected.append(error)
    assert (len(accepted), len(rejected)) == (10, 40)
    assert Order.objects.count() == 10
    audits = [e.payload_data for e in AuditEvent.objects.filter(action="rms.rejected")]
    assert len(audits) == 40 and {a["rule"] for a in audits} == {"orders_per_second"}
    assert AuditEvent.objects.filter(action="order.placed").count() == 10
    # a second later the window has room again
    clock.now = 1000.0 + 49 * 0.019 + 1.0
    place_order(
        actor=ops_world.trader,
        account=ops_world.account,
        request=ops_world.request(ops_world.equity, price=Decimal("990")),
        source="strategy",
    )


def test_the_limit_is_per_exchange_segment(ops_world):
    throttle.use(throttle.LocalThrottle(clock=FrozenClock()))
    ops_world.quote(ops_world.future, 20000, bid=19999.9, ask=20000.1)
    for _ in range(10):
        place_order(
            actor=ops_world.trader,
            account=ops_world.account,
            request=ops_world.request(ops_world.equity, price=Decimal("990")),
            source="api",
        )
    with pytest.raises(RiskRejected):
        place_order(
            actor=ops_world.trader,
            account=ops_world.account,
            request=ops_world.request(ops_world.equity, price=Decimal("990")),
            source="api",
        )
    place_order(
        actor=ops_world.trader,
        account=ops_world.account,
        request=ops_world.request(ops_world.future, quantity=75, product="NRML", price=Decimal("19900")),
        source="api",
    )


@pytest.mark.redis
def test_the_redis_governor_lets_exactly_the_limit_through_in_one_second(settings):
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("rms:ops:test:NSE", "rms:ops:test:NSE:seq")
    governor = throttle.RedisThrottle(settings.REDIS_URL)
    results = [governor.acquire("test:NSE", 10) for _ in range(50)]
    assert results.count(True) == 10 and results[:10] == [True] * 10


@pytest.mark.redis
def test_the_redis_governor_is_atomic_across_concurrent_clients(settings):
    from concurrent.futures import ThreadPoolExecutor

    import redis

    redis.Redis.from_url(settings.REDIS_URL).delete("rms:ops:conc:NSE", "rms:ops:conc:NSE:seq")

    def burst(_):
        governor = throttle.RedisThrottle(settings.REDIS_URL)
        return sum(governor.acquire("conc:NSE", 10) for _ in range(10))

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(burst, range(8))) == 10


def test_the_governor_fails_closed_when_redis_is_unreachable(ops_world):
    throttle.use(throttle.RedisThrottle("redis://127.0.0.1:1/0"))
    with pytest.raises(RiskRejected) as error:
        place_order(
            actor=ops_world.trader,
            account=ops_world.account,
            request=ops_world.request(ops_world.equity, price=Decimal("990")),
            source="api",
        )
    assert error.value.code == "orders_per_second_unavailable" and error.value.status == 503
    assert Order.objects.count() == 0
    assert AuditEvent.objects.get(action="rms.rejected").payload_data["rule"] == "orders_per_second_unavailable"
