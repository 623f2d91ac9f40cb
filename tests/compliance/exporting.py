"""Helpers of the export tests: trades made cheaply, and exports read back."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from compliance.selectors import IST
from orders.models import Trade
from orders.services import place_order

URL = "/orgs/acme/compliance/trades/"
EXPORT = URL + "export/"
OTR_EXPORT = "/orgs/acme/compliance/order-to-trade/export/"


def buy(world, *, account=None, quantity=10, **kwargs) -> Trade:
    """A market buy that fills at once (ask 1000.05); return its trade."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=account or world.account,
        request=world.request(world.equity, order_type="MARKET", quantity=quantity, **kwargs),
        source="web",
    )
    return Trade.objects.get(order=order)


def more_trades(trade: Trade, count: int, *, start: datetime | None = None, spread_days: int = 1) -> list[Trade]:
    """``count`` further fills of ``trade``'s order, spread over ``spread_days`` IST days from ``start``
    (default: the trade's own time), inserted in one statement."""
    start = start or trade.executed_at
    # Each stays on its IST day however soon after midnight the test runs: seconds back wrap within it.
    room = max(int((start - datetime.combine(start.astimezone(IST).date(), time(0), IST)).total_seconds()), 1)
    rows = [
        Trade(
            account_id=trade.account_id,
            order_id=trade.order_id,
            instrument_id=trade.instrument_id,
            product=trade.product,
            side=trade.side,
            quantity=1 + i % 7,
            price=Decimal("1000.0500"),
            exchange=trade.exchange,
            broker_trade_id=f"X{i:08d}",
            executed_at=start - timedelta(days=i % spread_days, seconds=i % room),
        )
        for i in range(count)
    ]
    return Trade.objects.bulk_create(rows)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_preamble(data: bytes | str) -> list[str]:
    """The texts of a CSV export's leading comment lines (each ``# <text>``, ending in CRLF)."""
    text = data.decode() if isinstance(data, bytes) else data
    preamble = []
    for line in io.StringIO(text, newline=""):
        if not line.startswith("#"):
            break
        assert line.startswith("# ") and line.endswith("\r\n") and "\r" not in line[:-2], line
        preamble.append(line[2:-2])
    return preamble


def csv_statement(data: bytes | str) -> dict[str, str]:
    """A CSV export's comment lines as ``{name: value}`` (each line is ``# <name>: <value>``)."""
    return dict(text.split(": ", 1) for text in csv_preamble(data))  # type: ignore[misc]


def csv_rows(data: bytes | str) -> list[list[str]]:
    """The rows of a CSV export, header first, as a reader that skips lines starting with ``#`` reads
    them (every such line is in the leading statement: asserted)."""
    text = data.decode() if isinstance(data, bytes) else data
    kept = [line for line in io.StringIO(text, newline="") if not line.startswith("#")]
    assert len(kept) == len(list(io.StringIO(text, newline=""))) - len(csv_preamble(text))
    return list(csv.reader(kept))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def today() -> str:
    return timezone.localdate(timezone=IST).isoformat()
