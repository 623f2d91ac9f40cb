"""A small trading world: an organisation, its people, a paper account, instruments and quotes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import Membership, Organisation, Role, User
from brokers.models import BrokerAccount
from marketdata import quotes as quote_store
from marketdata.listeners import dispatch
from marketdata.models import Instrument
from marketdata.quotes import DepthLevel, Quote, set_quotes
from orders import push
from orders.services import OrderRequest
from paper import faults
from rms import limits, throttle


@pytest.fixture(autouse=True)
def _fresh_trading_state(settings):
    """Each test starts with no quotes, no cached limits, a generous rate limit and no planned faults."""
    settings.RMS_DEFAULT_OPS_LIMIT = 100_000
    quote_store.store().clear()
    limits.invalidate()
    throttle.use(throttle.LocalThrottle())
    faults.clear()
    push._viewers.clear()
    yield
    throttle.use(None)
    faults.clear()
    limits.invalidate()


class World:
    def __init__(self) -> None:
        self.org = Organisation.objects.create(name="Acme", slug="acme")
        self.owner = self._member("owner", Role.OWNER)
        self.admin = self._member("admin", Role.ADMIN)
        self.trader = self._member("trader", Role.TRADER)
        self.viewer = self._member("viewer", Role.VIEWER)
        self.account = BrokerAccount.objects.create(
            organisation=self.org, label="Paper", broker="paper", client_code="P1"
        )
        assign_perm("brokers.trade_brokeraccount", self.trader, self.account)
        assign_perm("brokers.view_brokeraccount", self.trader, self.account)
        assign_perm("brokers.view_brokeraccount", self.viewer, self.account)
        self.equity = Instrument.objects.create(
            exchange="NSE",
            segment="NSE",
            tradingsymbol="RELIANCE",
            exchange_token="2885",
            instrument_type="EQ",
            lot_size=1,
            tick_size=Decimal("0.05"),
            lower_circuit=Decimal("900"),
            upper_circuit=Decimal("1100"),
        )
        self.future = Instrument.objects.create(
            exchange="NFO",
            segment="NFO-FUT",
            tradingsymbol="NIFTYFUT",
            exchange_token="35001",
            instrument_type="FUT",
            underlying="NIFTY",
            expiry=timezone.localdate() + timedelta(days=20),
            lot_size=75,
            tick_size=Decimal("0.10"),
            freeze_quantity=1800,
        )
        self.expired = Instrument.objects.create(
            exchange="NFO",
            segment="NFO-FUT",
            tradingsymbol="NIFTYOLD",
            exchange_token="35000",
            instrument_type="FUT",
            underlying="NIFTY",
            expiry=timezone.localdate() - timedelta(days=1),
            lot_size=75,
            tick_size=Decimal("0.10"),
        )

    def _member(self, name: str, role: str) -> User:
        user = User.objects.create_user(name)  # no password: hashing would dominate test time
        Membership.objects.create(user=user, organisation=self.org, role=role)
        return user

    def quote(self, instrument, ltp, *, bid=None, ask=None, bids=(), asks=(), tick=True) -> Quote:
        """Publish a quote the way the feed does: store it, then dispatch it to the tick listeners."""
        ltp = Decimal(str(ltp))
        q = Quote(
            instrument_id=instrument.pk,
            ltp=ltp,
            ts=timezone.now(),
            bid=Decimal(str(bid)) if bid is not None else None,
            ask=Decimal(str(ask)) if ask is not None else None,
            bids=tuple(DepthLevel(Decimal(str(p)), n) for p, n in bids),
            asks=tuple(DepthLevel(Decimal(str(p)), n) for p, n in asks),
        )
        set_quotes([q])
        if tick:
            dispatch([q])
        return q

    @staticmethod
    def request(instrument, side="BUY", quantity=10, order_type="LIMIT", product="MIS", **kwargs) -> OrderRequest:
        if order_type in {"LIMIT", "SL"} and "price" not in kwargs:
            kwargs["price"] = Decimal("1000")
        return OrderRequest(
            instrument_id=instrument.pk, side=side, quantity=quantity, order_type=order_type, product=product, **kwargs
        )


@pytest.fixture
def world(db) -> World:
    return World()
