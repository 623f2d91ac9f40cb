"""Property test: random sequences of user actions, ticks and broker updates keep the books consistent.

Invariants checked after every step: no overfill (filled <= quantity, filled == the sum of its trades),
no transition out of a terminal state, each position equal to the netting of its trades, and margin
never negative (each position's block equals a fresh computation, and the account's is their sum).
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from brokers.adapters.base import BrokerUpdate, Fill
from brokers.adapters.registry import adapter_for
from marketdata import quotes as quote_store
from orders import services
from orders.errors import OrderError
from orders.margin import group_margin, working_orders
from orders.models import Funds, Order, Position, Trade
from orders.states import TERMINAL
from paper import faults
from rms import limits, throttle
from rms.errors import RiskRejected
from tests.trading_world import World

D = Decimal
TICK = D("0.05")

place = st.tuples(
    st.just("place"),
    st.sampled_from(["BUY", "SELL"]),
    st.integers(1, 40),
    st.sampled_from(["MARKET", "LIMIT", "LIMIT", "SL", "SL-M"]),
    st.sampled_from(["MIS", "CNC"]),
    st.integers(-20, 20),  # price offset from the market, in ticks of 0.50
    st.sampled_from(["DAY", "DAY", "IOC"]),
)
tick = st.tuples(st.just("tick"), st.integers(-30, 30), st.integers(0, 30), st.integers(0, 30))
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
modify = st.tuples(st.just("modify"), st.integers(0, 50), st.integers(1, 60), st.integers(-20, 20))
replay = st.tuples(st.just("replay_fill"), st.integers(0, 50))
overfill = st.tuples(st.just("overfill"), st.integers(0, 50), st.integers(1, 100))
stale = st.tuples(
    st.just("stale_status"), st.integers(0, 50), st.sampled_from(["OPEN", "CANCELLED", "REJECTED", "TRIGGER_PENDING"])
)
lost = st.tuples(st.just("lose_response"), st.sampled_from(["MARKET", "LIMIT"]))
square = st.tuples(st.just("square_off"), st.sampled_from(["MIS", "CNC"]))
actions = st.lists(
    st.one_of(place, place, place, tick, tick, cancel, modify, replay, overfill, stale, lost, square),
    min_size=1,
    max_size=25,
)


class BookInvariants:
    """The books' invariants, checked after every step (``self.world`` is the trading world, its
    ``account`` the account traded; ``self.seen_terminal`` the orders seen in a terminal state)."""

    def _orders(self):
        return list(
            Order.objects.filter(account=self.world.account).select_related("account", "instrument").order_by("pk")
        )

    def _pick(self, index):
        orders = self._orders()
        return orders[index % len(orders)] if orders else None

    # --- invariants -------------------------------------------------------------------------------
    def _check(self):
        for order in self._orders():
            traded = sum(t.quantity for t in Trade.objects.filter(order=order))
            assert 0 <= order.filled_quantity <= order.quantity, order
            assert order.filled_quantity == traded, (order, traded)
            if order.pk in self.seen_terminal:
                assert order.status == self.seen_terminal[order.pk], (order, self.seen_terminal[order.pk])
            elif order.status in TERMINAL:
                self.seen_terminal[order.pk] = order.status
        adapter = adapter_for(self.world.account)
        total = D(0)
        for position in Position.objects.filter(account=self.world.account):
            net, average, realised = 0, D(0), D(0)
            for t in Trade.objects.filter(
                account=self.world.account, instrument=position.instrument, product=position.product
            ).order_by("pk"):
                signed = t.quantity if t.side == "BUY" else -t.quantity
                if net == 0 or (net > 0) == (signed > 0):
                    average = ((abs(net) * average + t.quantity * t.price) / (abs(net) + t.quantity)).quantize(
                        D("0.0001")
                    )
                else:
                    closed = min(t.quantity, abs(net))
                    realised += (t.price - average) * closed * (1 if net > 0 else -1)
                    average = t.price if t.quantity > abs(net) else (D(0) if t.quantity == abs(net) else average)
                net += signed
            assert (position.net_quantity, position.average_price, position.realised_pnl) == (net, average, realised)
            expected = group_margin(
                adapter=adapter,
                instrument=position.instrument,
                product=position.product,
                net=net,
                average=average,
                orders=working_orders(
                    account_id=self.world.account.pk, instrument_id=position.instrument_id, product=position.product
                ),
            )
            assert position.margin_blocked == expected >= 0, (position.margin_blocked, expected)
            total += position.margin_blocked
        funds = Funds.objects.filter(account=self.world.account).first()
        if funds is not None:
            assert funds.margin_blocked == total >= 0
            assert funds.realised_pnl == sum(
                (p.realised_pnl for p in Position.objects.filter(account=self.world.account)), D(0)
            )


class OrderBookProperties(BookInvariants, TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=actions)
    def test_random_actions_and_broker_updates_keep_every_invariant(self, steps):
        quote_store.store().clear()
        limits.invalidate()
        throttle.use(throttle.LocalThrottle(clock=lambda: 0.0))
        faults.clear()
        from django.conf import settings as django_settings

        previous_ops = django_settings.RMS_DEFAULT_OPS_LIMIT
        django_settings.RMS_DEFAULT_OPS_LIMIT = 1_000_000
        try:
            self._run(steps)
        finally:
            django_settings.RMS_DEFAULT_OPS_LIMIT = previous_ops
            throttle.use(None)
            faults.clear()

    def _run(self, steps) -> None:
        world = World()
        self.world = world
        self.price = D("1000")
        world.quote(world.equity, self.price, bid=self.price - TICK, ask=self.price + TICK)
        self.seen_terminal: dict[int, str] = {}
        for step in steps:
            try:
                getattr(self, f"_{step[0]}")(*step[1:])
            except (RiskRejected, OrderError):
                pass  # a refused act is a legitimate outcome; the books must still hold
            except Exception as error:  # broker refusals (cancel of a filled order, ...)
                from brokers.adapters.base import BrokerError

                if not isinstance(error, BrokerError):
                    raise
            self._check()

    # --- acts -------------------------------------------------------------------------------------
    def _place(self, side, quantity, order_type, product, offset, validity):
        price = self.price + D(offset) * D("0.50")
        extra = {}
        if order_type in {"LIMIT", "SL"}:
            extra["price"] = price
        if order_type in {"SL", "SL-M"}:
            extra["trigger_price"] = price
            validity = "DAY"
        request = self.world.request(
            self.world.equity,
            side=side,
            quantity=quantity,
            order_type=order_type,
            product=product,
            validity=validity,
            **extra,
        )
        services.place_order(actor=self.world.trader, account=self.world.account, request=request, source="strategy")

    def _tick(self, move, bid_qty, ask_qty):
        self.price = max(D("900"), min(D("1100"), self.price + D(move) * D("0.50")))
        self.world.quote(
            self.world.equity,
            self.price,
            bid=self.price - TICK,
            ask=self.price + TICK,
            bids=[(self.price - TICK, bid_qty)] if bid_qty else [],
            asks=[(self.price + TICK, ask_qty)] if ask_qty else [],
        )

    def _cancel(self, index):
        order = self._pick(index)
        if order is not None:
            services.cancel_order(actor=self.world.trader, order=order)

    def _modify(self, index, quantity, offset):
        order = self._pick(index)
        if order is not None:
            price = self.price + D(offset) * D("0.50") if order.order_type in {"LIMIT", "SL"} else None
            trigger = price if order.order_type == "SL" else None
            services.modify_order(
                actor=self.world.trader, order=order, quantity=quantity, price=price, trigger_price=trigger
            )

    def _replay_fill(self, index):
        trades = list(Trade.objects.filter(account=self.world.account).select_related("order").order_by("pk"))
        if trades:
            t = trades[index % len(trades)]
            services.apply_broker_update(
                self._update(t.order, "FILLED", Fill(t.broker_trade_id, t.quantity, t.price, timezone.now()))
            )

    def _overfill(self, index, quantity):
        order = self._pick(index)
        if order is not None:
            fill = Fill(
                f"X-{order.pk}-{quantity}-{Trade.objects.count()}",
                order.quantity + quantity,
                self.price,
                timezone.now(),
            )
            services.apply_broker_update(self._update(order, "FILLED", fill))

    def _stale_status(self, index, status):
        order = self._pick(index)
        if order is not None:
            services.apply_broker_update(self._update(order, status, None))

    def _lose_response(self, order_type):
        faults.inject(faults.LOSE_RESPONSE)
        price = {"price": self.price - D("1")} if order_type == "LIMIT" else {}
        request = self.world.request(self.world.equity, quantity=5, order_type=order_type, **price)
        order = services.place_order(actor=self.world.trader, account=self.world.account, request=request, source="api")
        services.reconcile_order(order_id=order.pk)

    def _square_off(self, product):
        services.square_off_all(actor=self.world.trader, account=self.world.account, product=product)

    def _update(self, order, status, fill):
        return BrokerUpdate(
            account_id=order.account_id,
            tag=order.broker_tag,
            broker_order_id=order.broker_order_id,
            status=status,
            ts=timezone.now(),
            fill=fill,
        )
