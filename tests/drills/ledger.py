"""What a drill or the soak counts of the orders it sent, and the verdict every one of them shares.

A client records each order it sends under its idempotency key: acknowledged (2xx, with the order's
``client_order_id``), refused (a 4xx the terminal decided, or a 503 naming a refusal in
``REFUSED_503_CODES``: nothing placed), or failed (an error or a dropped connection: the order may
or may not exist). Afterwards ``tally`` reads what the terminal's
database holds for those keys and, where given, what the broker's own book holds for each order's tag:

- found: keys with an order in the database;
- duplicated: keys with more than one order, and orders the broker holds more than once;
- lost: acknowledged keys with no order, and orders sent to the broker (a broker order id, or a
  status past PENDING) that the broker's book does not hold.

``Tally.line()`` is the line every drill prints; ``Tally.assert_whole()`` fails the drill on any lost
or duplicated order.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db import connection

SENT_TO_BROKER = ("OPEN", "TRIGGER_PENDING", "PARTIALLY_FILLED", "FILLED", "CANCELLED")
# 503 answers in which the terminal says it refused the order before writing or sending anything (a
# dependency it will not trade without is unreachable): refusals, not failures of unknown outcome.
REFUSED_503_CODES = frozenset({"orders_per_second_unavailable", "quotes_unavailable"})


def _refusal(status: int, body: Mapping | None) -> bool:
    """Whether an answer says the terminal refused the order (nothing written or sent)."""
    if status == 503:
        return body is not None and body.get("code") in REFUSED_503_CODES
    return 400 <= status < 500 and status != 408


@dataclass(frozen=True)
class OrderRow:
    idempotency_key: str
    client_order_id: str
    broker_tag: str
    broker_order_id: str
    status: str


@dataclass(frozen=True)
class Tally:
    name: str
    sent: int
    acknowledged: int
    refused: int
    failed: int
    found: int
    duplicated: tuple[str, ...]
    lost: tuple[str, ...]
    recovery_seconds: float | None = None

    def line(self) -> str:
        recovery = "" if self.recovery_seconds is None else f"; recovery {self.recovery_seconds:.2f} s"
        return (
            f"{self.name}: orders sent {self.sent}, acknowledged {self.acknowledged}, refused {self.refused}, "
            f"failed {self.failed}, found {self.found}, duplicated {len(self.duplicated)}, "
            f"lost {len(self.lost)}{recovery}"
        )

    def assert_whole(self) -> None:
        assert not self.duplicated and not self.lost, (
            f"{self.line()}\nduplicated: {list(self.duplicated)[:10]}\nlost: {list(self.lost)[:10]}"
        )


@dataclass
class Ledger:
    """Thread-safe: many client threads record into one ledger."""

    name: str
    sent: set[str] = field(default_factory=set)
    acknowledged: dict[str, str] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    recovery_seconds: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, key: str) -> None:
        with self._lock:
            self.sent.add(key)

    def ack(self, key: str, client_order_id: str) -> None:
        with self._lock:
            self.acknowledged[key] = client_order_id
            self.failed.pop(key, None)

    def refuse(self, key: str, status: int) -> None:
        with self._lock:
            self.refused[key] = status

    def fail(self, key: str, reason: str) -> None:
        with self._lock:
            if key not in self.acknowledged:
                self.failed[key] = reason

    def record(self, key: str, status: int | None, body: Mapping | None, reason: str = "") -> None:
        """One answer (or none: ``status`` None) to the order sent under ``key``."""
        if status is not None and 200 <= status < 300 and body is not None:
            self.ack(key, str(body.get("client_order_id") or body.get("id") or ""))
        elif status is not None and _refusal(status, body):
            self.refuse(key, status)
        else:
            self.fail(key, reason or f"HTTP {status}")

    def tally(self, rows: Iterable[OrderRow], broker_counts: Mapping[str, int] | None = None) -> Tally:
        """``rows``: the database's orders for the sent keys (``orders_for_keys``); ``broker_counts``:
        how many orders the broker's book holds per tag (the paper exchange's ``tag``, Kite's ``tag``)."""
        rows = list(rows)
        per_key = Counter(row.idempotency_key for row in rows)
        duplicated = [f"key {key} x{n}" for key, n in per_key.items() if n > 1]
        lost = [f"key {key} acknowledged, no order" for key in self.acknowledged if key not in per_key]
        if broker_counts is not None:
            for row in rows:
                at_broker = broker_counts.get(row.broker_tag, 0)
                if at_broker > 1:
                    duplicated.append(f"tag {row.broker_tag} x{at_broker} at the broker")
                if at_broker == 0 and (row.broker_order_id or row.status in SENT_TO_BROKER):
                    lost.append(f"tag {row.broker_tag} {row.status}, not at the broker")
        return Tally(
            name=self.name,
            sent=len(self.sent),
            acknowledged=len(self.acknowledged),
            refused=len(self.refused),
            failed=len(self.failed),
            found=len(per_key),
            duplicated=tuple(duplicated),
            lost=tuple(lost),
            recovery_seconds=self.recovery_seconds,
        )


def orders_for_keys(keys: Iterable[str], *, using=None) -> list[OrderRow]:
    """The database's orders under the given idempotency keys (plain SQL: a drill's database may be
    another process's, reached through ``using``, a DB-API connection, instead of Django's)."""
    keys = list(keys)
    if not keys:
        return []
    sql = (
        "SELECT idempotency_key, client_order_id::text, broker_tag, broker_order_id, status "
        "FROM orders_order WHERE idempotency_key = ANY(%s)"
    )
    cursor = (using or connection).cursor()
    try:
        cursor.execute(sql, [keys])
        return [OrderRow(*row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def paper_counts_by_tag(tags: Iterable[str], *, using=None) -> dict[str, int]:
    """How many orders the paper exchange's book holds per OMS tag."""
    tags = list(tags)
    if not tags:
        return {}
    cursor = (using or connection).cursor()
    try:
        cursor.execute("SELECT tag, count(*) FROM paper_paperorder WHERE tag = ANY(%s) GROUP BY tag", [tags])
        return dict(cursor.fetchall())
    finally:
        cursor.close()
