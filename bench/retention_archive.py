"""Archiving a month, and verifying it, against reading the same rows: rows per second and the ratio.

    DATABASE_URL=postgres://... python bench/retention_archive.py [--orders 20000]

On a throwaway test database it writes ``--orders`` orders of one organisation into a closed month,
each with one event and one trade, then times, in the same run: the baseline (every row of the three
tables read with ``values_list`` and encoded as JSON, nothing written), ``archive_month`` (the same
read, gzip, SHA-256, the references and the signed manifest, to a filesystem storage in a temporary
directory) and ``verify_archive`` (re-hashing and re-reading every file). It prints rows/s of each and
their ratio to the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _world(orders: int):
    from accounts.models import Organisation, User
    from brokers.models import BrokerAccount
    from marketdata.models import Instrument
    from orders.models import Order, OrderEvent, Trade
    from retention.months import Month

    month = Month(2019, 3)
    at = month.start + dt.timedelta(days=3)
    org = Organisation.objects.create(name="Bench", slug="bench")
    user = User.objects.create_user("bench-trader")
    account = BrokerAccount.objects.create(organisation=org, label="Paper", broker="paper", client_code="B1")
    instrument = Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="BENCH", exchange_token="1", instrument_type="EQ"
    )
    for start in range(0, orders, 2000):
        batch = Order.objects.bulk_create(
            Order(
                account=account,
                placed_by=user,
                instrument=instrument,
                side="BUY",
                quantity=1,
                filled_quantity=1,
                order_type="LIMIT",
                product="CNC",
                price=Decimal("101.25"),
                margin_price=Decimal("101.25"),
                status="COMPLETE",
                source="web",
            )
            for _ in range(start, min(orders, start + 2000))
        )
        OrderEvent.objects.bulk_create(OrderEvent(order=o, kind="placed", data={"qty": 1}) for o in batch)
        Trade.objects.bulk_create(
            Trade(
                account=account,
                order=o,
                instrument=instrument,
                product="CNC",
                side="BUY",
                quantity=1,
                price=Decimal("101.25"),
                exchange="NSE",
                broker_trade_id=f"T{o.pk}",
                executed_at=at,
            )
            for o in batch
        )
    Order.objects.update(created_at=at)
    OrderEvent.objects.update(created_at=at)
    return month


def _baseline(month) -> int:
    from orders.models import Order, OrderEvent, Trade
    from retention.records import records

    rows = 0
    for model, field in ((Order, "created_at"), (OrderEvent, "created_at"), (Trade, "executed_at")):
        queryset = model.objects.filter(**{f"{field}__gte": month.start, f"{field}__lt": month.end})
        for record in records(queryset):
            json.dumps(record, sort_keys=True)
            rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings
    from django.test.utils import setup_test_environment

    setup_test_environment()
    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as directory:
            archives = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": directory}}
            # override_settings sends setting_changed, which makes Django drop its cached storages.
            stack.enter_context(override_settings(STORAGES={**settings.STORAGES, "archives": archives}))

            from retention.services.archive import archive_month
            from retention.services.verify import verify_archive

            month = _world(args.orders)
            started = time.perf_counter()
            rows = _baseline(month)
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            summary = archive_month(month=month)
            archived = time.perf_counter() - started
            started = time.perf_counter()
            check = verify_archive(month)
            verified = time.perf_counter() - started
            assert check.ok, check.problems
            size = sum(entry["bytes"] for entry in summary.files.values())
            print(f"{rows} rows ({args.orders} orders, events, trades) on {connection.vendor}; archive {size} bytes")
            print(f"baseline read + JSON : {rows / baseline:10.0f} rows/s")
            print(f"archive_month        : {rows / archived:10.0f} rows/s  ratio {baseline / archived:.2f}")
            print(f"verify_archive       : {rows / verified:10.0f} rows/s  ratio {baseline / verified:.2f}")
    finally:
        connection.close()
        connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
