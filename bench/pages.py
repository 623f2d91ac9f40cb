"""Server render time of the trader's pages for a busy user, against a trivial authenticated endpoint.

    python bench/pages.py [--requests 200]          (DATABASE_URL picks the database; default SQLite)

Builds a throwaway test database with the sample symbol master, one Trader with 200 orders, 100
trades, 50 positions and 3 watchlists of 20 instruments, quotes for everything, then times through
Django's test client (in process: template, ORM and middleware cost, no network):
- the dashboard page (GET /, every panel rendered),
- the HTMX partials the page swaps (watchlist, order book, positions with MTM, the option chain of
  NIFTY with IV and Greeks for 10 strikes each side: 42 options, each solved for its IV),
- the baseline: GET /api/accounts/me, an authenticated ninja endpoint doing one query.
Targets: page p95 < 100 ms, partial p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

PAGE_TARGET_MS, PARTIAL_TARGET_MS = 100.0, 50.0


def build_world():
    from guardian.shortcuts import assign_perm

    from accounts.models import Membership, Organisation, Role, User
    from brokers.models import BrokerAccount
    from marketdata.models import Instrument, InstrumentType
    from marketdata.quotes import Quote, set_quotes
    from orders.models import Order, Position, Status, Trade
    from terminal.models import Watchlist, WatchlistItem

    call_command("load_instruments", sample=True, no_progress=True, stdout=open(os.devnull, "w"))  # noqa: SIM115
    org = Organisation.objects.create(name="Bench", slug="bench")
    user = User.objects.create_user("bench-trader")
    Membership.objects.create(user=user, organisation=org, role=Role.TRADER)
    account = BrokerAccount.objects.create(organisation=org, label="Paper", broker="paper", client_code="BENCH")
    assign_perm("brokers.trade_brokeraccount", user, account)
    assign_perm("brokers.view_brokeraccount", user, account)
    stocks = list(Instrument.objects.filter(instrument_type=InstrumentType.EQ).order_by("pk")[:60])
    everything = list(Instrument.objects.all())
    now = timezone.now()
    set_quotes(
        [
            Quote(i.pk, Decimal("1000.05"), now, bid=Decimal("1000"), ask=Decimal("1000.10"), close=Decimal("990"))
            for i in everything
        ]
    )
    set_quotes(_option_quotes(now))
    for n in range(3):
        watchlist = Watchlist.objects.create(user=user, name=f"Watchlist {n + 1}", position=n)
        WatchlistItem.objects.bulk_create(
            WatchlistItem(watchlist=watchlist, instrument=i, position=p) for p, i in enumerate(stocks[n : n + 20])
        )
    statuses = [Status.OPEN, Status.FILLED, Status.CANCELLED, Status.REJECTED]
    orders = Order.objects.bulk_create(
        Order(
            account=account,
            placed_by=user,
            instrument=stocks[n % len(stocks)],
            side="BUY" if n % 2 else "SELL",
            quantity=10,
            filled_quantity=10 if statuses[n % 4] == Status.FILLED else 0,
            average_price=Decimal("1000") if statuses[n % 4] == Status.FILLED else None,
            order_type="LIMIT",
            product="MIS",
            price=Decimal("1000"),
            margin_price=Decimal("1000"),
            status=statuses[n % 4],
            source="web",
        )
        for n in range(200)
    )
    Trade.objects.bulk_create(
        Trade(
            order=o,
            account=account,
            instrument=o.instrument,
            side=o.side,
            product=o.product,
            quantity=10,
            price=Decimal("1000"),
            broker_trade_id=f"T{o.pk}",
            executed_at=now,
        )
        for o in orders[:100]
    )
    Position.objects.bulk_create(
        Position(
            account=account,
            instrument=stocks[n],
            product="MIS",
            net_quantity=10,
            average_price=Decimal("995"),
            buy_quantity=10,
            buy_value=Decimal("9950"),
        )
        for n in range(50)
    )
    return user, account, Watchlist.objects.filter(user=user).first()


def _option_quotes(now):
    """NIFTY at 26,000, its future at 26,100 and every NIFTY option at its Black-76 price at 13%
    volatility: the chain then solves a real IV and Greeks for each option it shows."""
    from marketdata.greeks import black76_greeks
    from marketdata.models import Instrument, InstrumentType
    from marketdata.options import years_to_expiry
    from marketdata.quotes import Quote

    quotes = []
    for i in Instrument.objects.filter(underlying="NIFTY"):
        if i.instrument_type == InstrumentType.INDEX:
            price = 26000.0
        elif i.instrument_type == InstrumentType.FUT:
            price = 26100.0
        elif i.instrument_type in (InstrumentType.CE, InstrumentType.PE) and i.expiry and i.strike:
            years = years_to_expiry(i.expiry, now)
            call = i.instrument_type == InstrumentType.CE
            greeks = black76_greeks(
                future=26100.0, strike=float(i.strike), years=years, vol=0.13, call=call, rate=0.065
            )
            price = max(round(greeks.price * 20) / 20, 0.05)
        else:
            continue
        quotes.append(Quote(i.pk, Decimal(str(price)), now, oi=100_000, close=Decimal(str(price))))
    return quotes


def timed(client: Client, url: str, n: int, **headers) -> list[float]:
    for _ in range(5):  # warm caches (templates, limits, sessions)
        response = client.get(url, **headers)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        client.get(url, **headers)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[94]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from tests.otp_session import login_with_otp

        user, account, watchlist = build_world()
        client = login_with_otp(Client(), user)
        hx = {"HTTP_HX_REQUEST": "true"}
        results = {
            "baseline GET /api/accounts/me": timed(client, "/api/accounts/me", args.requests),
            "page GET / (dashboard)": timed(client, "/", args.requests),
            "partial watchlist": timed(client, f"/watchlists/{watchlist.pk}/", args.requests, **hx),
            "partial order book": timed(client, f"/trading/{account.pk}/panels/orders/", args.requests, **hx),
            "partial positions": timed(client, f"/trading/{account.pk}/panels/positions/", args.requests, **hx),
            "partial option chain": timed(client, "/options/?underlying=NIFTY&strikes=10", args.requests, **hx),
        }
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    base = p95(results["baseline GET /api/accounts/me"])
    print(f"database: {connection.vendor}; {args.requests} requests each; times in ms")
    print(f"{'what':34} {'p50':>8} {'p95':>8} {'p95/baseline':>13} {'target':>8}")
    ok = True
    for name, samples in results.items():
        kind = name.split()[0]
        target = {"page": PAGE_TARGET_MS, "partial": PARTIAL_TARGET_MS}.get(kind)
        mark = ""
        if target is not None:
            ok &= p95(samples) < target
            mark = f"< {target:.0f}" + (" ok" if p95(samples) < target else " MISSED")
        print(f"{name:34} {statistics.median(samples):8.1f} {p95(samples):8.1f} {p95(samples) / base:13.1f} {mark:>8}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
