"""Property test against the local Kite server: random orders, fills reported by postback, cancels,
and faults on the wire (5xx, 429, token errors, answers lost after Kite accepted) keep the books
consistent, as on the paper exchange (the invariants of tests/orders/test_order_properties.py), and
after reconciliation Kite and the terminal agree: every order Kite holds is one of ours, held once,
with our fills equal to Kite's trades and no order left UNKNOWN."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from brokers import rate_limits
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_set
from brokers.services.inbox import inbox_drain, inbox_receive
from brokers.services.sessions import session_start
from kite.adapter import update_of
from kite.records import order_from
from marketdata import quotes as quote_store
from orders import services
from orders.models import Order, Trade
from orders.states import Status
from rms import limits, throttle
from tests.kite import fake_kite as fk
from tests.kite.mapping import map_for_kite
from tests.orders.test_order_properties import BookInvariants
from tests.trading_world import World

D = Decimal
FAULTS = ["none", "none", "none", "5xx", "429", "token", "lost"]

place = st.tuples(
    st.just("place"),
    st.sampled_from(["BUY", "SELL"]),
    st.integers(1, 40),
    st.sampled_from(["LIMIT", "LIMIT", "MARKET"]),
    st.integers(-10, 10),
    st.sampled_from(FAULTS),
)
fill = st.tuples(st.just("fill"), st.integers(0, 50), st.booleans())
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
replay = st.tuples(st.just("replay"), st.integers(0, 50))
actions = st.lists(st.one_of(place, place, place, fill, fill, cancel, replay), min_size=1, max_size=20)


class KiteOrderProperties(BookInvariants, TestCase):
    """The paper invariants (``_check``) on a Kite account, with Kite's own acts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = fk.FakeKite().start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        super().tearDownClass()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=actions)
    def test_random_kite_orders_fills_and_faults_keep_every_invariant(self, steps):
        fake = self.fake
        fake.orders.clear(), fake.history.clear(), fake.trades.clear(), fake.requests.clear()
        fake._faults.clear()
        fake.access_token_valid = True
        quote_store.store().clear()
        limits.invalidate()
        throttle.use(throttle.LocalThrottle(clock=lambda: 0.0))
        ticks = itertools.count(0, 10)  # the client-side limiter's clock moves 10 s a call: never limited
        rate_limits.use_rate_limiter(rate_limits.LocalRateLimiter(clock=lambda: float(next(ticks))))
        saved = (django_settings.RMS_DEFAULT_OPS_LIMIT, django_settings.KITE_API_ROOT)
        django_settings.RMS_DEFAULT_OPS_LIMIT, django_settings.KITE_API_ROOT = 1_000_000, fake.url
        try:
            self._run_kite(steps)
        finally:
            django_settings.RMS_DEFAULT_OPS_LIMIT, django_settings.KITE_API_ROOT = saved
            throttle.use(None)
            rate_limits.use_rate_limiter(None)

    def _run_kite(self, steps) -> None:
        world = World()
        account = BrokerAccount.objects.create(
            organisation=world.org, label="Kite", broker="kite", client_code="AB1234"
        )
        broker_credentials_set(account=account, credentials={"api_key": fk.API_KEY, "api_secret": fk.API_SECRET})
        from guardian.shortcuts import assign_perm

        assign_perm("brokers.trade_brokeraccount", world.trader, account)
        world.account = account
        self.world = world
        self.price = D("2900")
        world.quote(world.equity, self.price, bid=self.price - D("0.05"), ask=self.price + D("0.05"))
        map_for_kite(world.equity, token=738561)
        self.postbacks: list[bytes] = []
        self.seen_terminal: dict[int, str] = {}
        for step in steps:
            self._sign_in()
            try:
                getattr(self, f"_k_{step[0]}")(*step[1:])
            except Exception as error:
                from brokers.adapters.base import BrokerError
                from orders.errors import OrderError
                from rms.errors import RiskRejected

                if not isinstance(error, BrokerError | OrderError | RiskRejected):
                    raise
            self._check()
        self._settle()

    def _sign_in(self) -> None:
        self.fake.access_token_valid = True
        session_start(
            account=self.world.account,
            secrets={"access_token": fk.ACCESS_TOKEN},
            expires_at=timezone.now() + timedelta(hours=1),
        )

    # --- acts ---------------------------------------------------------------------------------
    def _k_place(self, side, quantity, order_type, offset, fault):
        fake = self.fake
        if fault == "5xx":
            fake.fail(
                status=503, body=b"<html>busy</html>", content_type="text/html", method="POST", path="/orders/regular"
            )
        elif fault == "429":
            fake.fail(
                status=429,
                error_type="NetworkException",
                message="Too many requests",
                method="POST",
                path="/orders/regular",
            )
        elif fault == "token":
            fake.access_token_valid = False
        elif fault == "lost":
            fake.lose_answer(method="POST", path="/orders/regular", drop=True)
        extra = {"price": self.price + D(offset) * D("0.50")} if order_type == "LIMIT" else {}
        request = self.world.request(
            self.world.equity, side=side, quantity=quantity, order_type=order_type, product="MIS", **extra
        )
        services.place_order(actor=self.world.trader, account=self.world.account, request=request, source="api")

    def _k_fill(self, index, report):
        open_ids = [oid for oid, o in self.fake.orders.items() if o["status"] == "OPEN"]
        if not open_ids:
            return
        order_id = open_ids[index % len(open_ids)]
        self.fake.fill(order_id)
        body = self.fake.postback(order_id)
        self.postbacks.append(body)
        if report:  # the postback arrives (else only reconciliation will tell)
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        import json

        data = json.loads(body, parse_float=D)
        inbox_receive([update_of(self.world.account.pk, order_from(data))], source="postback")
        inbox_drain()
        for order in Order.objects.filter(
            account=self.world.account, status__in=[Status.OPEN, Status.PARTIALLY_FILLED]
        ):
            services.reconcile_order(order_id=order.pk)  # the queued fetch of the reported trades

    def _k_replay(self, index):
        if self.postbacks:
            self._deliver(self.postbacks[index % len(self.postbacks)])

    def _k_cancel(self, index):
        order = self._pick(index)
        if order is not None:
            services.cancel_order(actor=self.world.trader, order=order)

    # --- after the steps: reconcile everything, then Kite and the terminal agree ---------------
    def _settle(self) -> None:
        self._sign_in()
        for order in Order.objects.filter(account=self.world.account).exclude(
            status__in=[Status.FILLED, Status.CANCELLED, Status.REJECTED]
        ):
            services.reconcile_order(order_id=order.pk)
        self._check()
        ours = {o.broker_tag: o for o in Order.objects.filter(account=self.world.account)}
        tags = [o["tag"] for o in self.fake.orders.values()]
        assert len(tags) == len(set(tags)), "an order sent twice"
        assert set(tags) <= set(ours), "an order at Kite that is not ours"
        assert not Order.objects.filter(account=self.world.account, status=Status.UNKNOWN).exists()
        kite_fills = {}
        for trade in self.fake.trades:
            kite_fills[trade["order_id"]] = kite_fills.get(trade["order_id"], 0) + trade["quantity"]
        for kite_order in self.fake.orders.values():
            order = ours[kite_order["tag"]]
            recorded = sum(t.quantity for t in Trade.objects.filter(order=order))
            assert recorded == order.filled_quantity == kite_fills.get(kite_order["order_id"], 0), order
