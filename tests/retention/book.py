"""A small order book for the retention tests: an organisation, an account, an instrument, and orders
with their events and trades dated where a test needs them (dates are set after insert, as the
retention triggers watch deletes only)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from accounts.models import Organisation, User
from brokers.models import BrokerAccount
from marketdata.models import Instrument
from orders.models import Order, OrderEvent, Trade

_numbers = itertools.count(1)


class Book:
    def __init__(self, slug: str = "acme") -> None:
        n = next(_numbers)
        self.org = Organisation.objects.create(name=slug.title(), slug=slug)
        self.user = User.objects.create_user(f"{slug}-trader-{n}")
        self.account = BrokerAccount.objects.create(
            organisation=self.org, label="Paper", broker="paper", client_code=f"{slug.upper()}{n}"
        )
        self.instrument = Instrument.objects.create(
            exchange="NSE",
            segment="NSE",
            tradingsymbol=f"SYM{n}",
            exchange_token=str(1000 + n),
            instrument_type="EQ",
        )

    def order(self, at: dt.datetime, *, fills: int = 1) -> Order:
        """An order created ``at``, with a placed event at the same time and ``fills`` trades of one unit."""
        order = Order.objects.create(
            account=self.account,
            placed_by=self.user,
            instrument=self.instrument,
            side="BUY",
            quantity=max(fills, 1),
            filled_quantity=fills,
            order_type="LIMIT",
            product="CNC",
            price=Decimal("101.2500"),
            margin_price=Decimal("101.2500"),
            status="COMPLETE" if fills else "OPEN",
            source="web",
            algo_id="GENERIC",
        )
        event = OrderEvent.objects.create(
            order=order, kind="placed", to_status="OPEN", data={"qty": "1", "note": "ünïcode \u20b9"}
        )
        for i in range(fills):
            Trade.objects.create(
                account=self.account,
                order=order,
                instrument=self.instrument,
                product="CNC",
                side="BUY",
                quantity=1,
                price=Decimal("101.2500"),
                exchange="NSE",
                broker_trade_id=f"T{order.pk}-{i}",
                executed_at=at,
            )
        Order.objects.filter(pk=order.pk).update(created_at=at, updated_at=at)
        OrderEvent.objects.filter(pk=event.pk).update(created_at=at)
        order.refresh_from_db()
        return order


def years_ago(years: float, now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now - dt.timedelta(days=round(365.25 * years))
