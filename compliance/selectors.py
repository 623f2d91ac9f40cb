"""Reads of the compliance domain: the organisation reports (trade trail, order-to-trade ratio).

Dates are IST calendar days; a range runs from the start of ``date_from`` to the end of ``date_to``
in IST, read as UTC bounds so that the indexed timestamp columns are compared directly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Max, QuerySet
from django.db.models.functions import TruncDate

from accounts.models import Organisation
from brokers.models import BrokerAccount
from orders.models import Order, OrderEvent, Trade

IST = ZoneInfo("Asia/Kolkata")
# The OrderEvent kinds the order-to-trade ratio counts (docs/compliance-reports.md).
MODIFICATION_KINDS = ("modify",)  # a change the terminal accepted and sent to the broker
CANCELLATION_KINDS = ("cancel_request", "cancel")  # a cancel sent to the broker; a PENDING order cancelled unsent


def ist_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """Return the aware datetimes [start, end) covering the IST days ``date_from`` to ``date_to``."""
    start = datetime.combine(date_from, time.min, tzinfo=IST)
    return start, datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=IST)


def report_account_list(*, organisation: Organisation | None) -> QuerySet[BrokerAccount]:
    """The organisation's broker accounts (every account when None, the platform's reports), by client
    code, with their organisation (the reports' account filter)."""
    accounts = BrokerAccount.objects.select_related("organisation")
    if organisation is not None:
        accounts = accounts.filter(organisation=organisation)
    return accounts.order_by("client_code", "id")


def trade_trail_list(
    *,
    organisation: Organisation | None,
    date_from: date,
    date_to: date,
    account: BrokerAccount | None = None,
    algo_id: str = "",
    source: str = "",
    up_to_id: int | None = None,
) -> QuerySet[Trade]:
    """Return the organisation's trades executed in the IST range, newest first, with their order,
    the order's placer, the instrument and the account joined, and ``value`` (quantity x price).

    ``account``, ``algo_id`` (exact, as stored on the order) and ``source`` narrow it when given;
    ``up_to_id`` keeps only trades with that id or lower (an export pins the rows it counted).
    ``organisation`` None reads every organisation's trades (the platform's report).
    """
    start, end = ist_bounds(date_from, date_to)
    trades = Trade.objects.filter(executed_at__gte=start, executed_at__lt=end)
    if organisation is not None:
        trades = trades.filter(account__organisation=organisation)
    if account is not None:
        trades = trades.filter(account=account)
    if algo_id:
        trades = trades.filter(order__algo_id=algo_id)
    if source:
        trades = trades.filter(order__source=source)
    if up_to_id is not None:
        trades = trades.filter(id__lte=up_to_id)
    value = ExpressionWrapper(F("quantity") * F("price"), output_field=DecimalField(max_digits=24, decimal_places=4))
    return (
        trades.select_related("order", "order__placed_by", "instrument", "account", "account__organisation")
        .annotate(value=value)
        .order_by("-executed_at", "-id")
    )


def trade_trail_extent(trades: QuerySet[Trade]) -> tuple[int, int | None]:
    """Return how many trades ``trades`` holds and the highest id among them (None when empty)."""
    found = trades.order_by().aggregate(rows=Count("id"), last=Max("id"))
    return found["rows"], found["last"]


@dataclass(frozen=True, slots=True)
class OrderToTradeRow:
    """One account on one IST day: what it sent and what traded."""

    account: BrokerAccount
    day: date
    orders: int
    modifications: int
    cancellations: int
    trades: int

    @property
    def messages(self) -> int:
        return self.orders + self.modifications + self.cancellations

    @property
    def ratio(self) -> Decimal | None:
        """(orders + modifications + cancellations) / trades to two places; None on a day without trades."""
        if not self.trades:
            return None
        return (Decimal(self.messages) / Decimal(self.trades)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def order_to_trade_list(
    *,
    organisation: Organisation | None,
    date_from: date,
    date_to: date,
    account: BrokerAccount | None = None,
    algo_id: str = "",
    source: str = "",
) -> list[OrderToTradeRow]:
    """Return one row per account and IST day in the range with any order, modification, cancellation
    or trade, newest day first, then by client code.

    Each count falls on the IST day of its own timestamp: an order on its creation, a modification or
    cancellation on its OrderEvent, a trade on its execution. ``algo_id`` (exact) and ``source`` keep
    only the orders with that algo id or source, and the events and trades of those orders.
    ``organisation`` None counts every organisation's accounts (the platform's report).
    """
    start, end = ist_bounds(date_from, date_to)
    accounts = {a.pk: a for a in report_account_list(organisation=organisation)}
    if account is not None:
        accounts = {account.pk: account} if account.pk in accounts else {}
    counts: dict[tuple[int, date], dict[str, int]] = defaultdict(
        lambda: {"orders": 0, "modifications": 0, "cancellations": 0, "trades": 0}
    )

    def tally(rows, name: str) -> None:
        for account_id, day, n in rows.values_list("account_id", "day", "n"):
            counts[(account_id, day)][name] += n

    order_filter = {key: value for key, value in (("algo_id", algo_id), ("source", source)) if value}
    of_orders = {f"order__{key}": value for key, value in order_filter.items()}
    orders = Order.objects.filter(account_id__in=accounts, created_at__gte=start, created_at__lt=end, **order_filter)
    tally(
        orders.annotate(day=TruncDate("created_at", tzinfo=IST)).values("account_id", "day").annotate(n=Count("id")),
        "orders",
    )
    events = OrderEvent.objects.filter(
        order__account_id__in=accounts, created_at__gte=start, created_at__lt=end, **of_orders
    )
    for name, kinds in (("modifications", MODIFICATION_KINDS), ("cancellations", CANCELLATION_KINDS)):
        per_day = (
            events.filter(kind__in=kinds)
            .annotate(account_id=F("order__account_id"), day=TruncDate("created_at", tzinfo=IST))
            .values("account_id", "day")
            .annotate(n=Count("id"))
        )
        tally(per_day, name)
    trades = Trade.objects.filter(account_id__in=accounts, executed_at__gte=start, executed_at__lt=end, **of_orders)
    tally(
        trades.annotate(day=TruncDate("executed_at", tzinfo=IST)).values("account_id", "day").annotate(n=Count("id")),
        "trades",
    )
    rows = [OrderToTradeRow(account=accounts[account_id], day=day, **n) for (account_id, day), n in counts.items()]
    rows.sort(key=lambda row: (row.account.client_code, row.account.pk))
    rows.sort(key=lambda row: row.day, reverse=True)
    return rows
