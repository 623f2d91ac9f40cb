"""The algo order summary: per IST day, algo id and broker account, the orders sent, the trades made,
the orders the broker rejected, and the orders-per-second peak against SEBI's threshold of 10 orders a
second for retail algos (above it an algo must be registered with the exchange; the NSE measures per
exchange segment on the broker's clock).

The peak is the most orders of one algo id on one account within any one second (a sliding window,
as the RMS governor counts), read from the orders' creation times: the exchange counts per segment,
so a peak across segments is at least the exchange's figure for any one of them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, F
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Organisation
from brokers.models import BrokerAccount
from compliance.reports.scope import scope_of
from compliance.selectors import IST, ist_bounds
from compliance.views import ReportFilters, _export, _report_page, report_views
from orders.models import Order, Trade
from orders.states import Status

TITLE = "Algo order summary"  # the title its PDF and XLSX exports carry
TEMPLATE = "compliance/algo_summary.html"
FIELDS = ("account", "from", "to", "algo")
PLATFORM_FIELDS = ("from", "to", "algo", "org")
OPS_THRESHOLD = 10  # SEBI/NSE: orders per second per exchange segment of an unregistered retail algo
WINDOW = timedelta(seconds=1)
HEADER = (
    "date_ist",
    "organisation",
    "client_code",
    "algo_id",
    "orders",
    "trades",
    "rejections",
    "peak_ops",
    "peak_at_ist",
    "over_threshold",
)


@dataclass(slots=True)
class AlgoDayRow:
    """One algo id on one account on one IST day."""

    day: date
    account: BrokerAccount
    algo_id: str
    orders: int = 0
    trades: int = 0
    rejections: int = 0
    peak_ops: int = 0
    peak_at: datetime | None = None  # the order that reached the peak
    _window: deque = field(default_factory=deque, repr=False)

    @property
    def over_threshold(self) -> bool:
        return self.peak_ops > OPS_THRESHOLD

    def count_order(self, created_at: datetime, status: str) -> None:
        """Count one order, in creation order, into the totals and the sliding one-second window."""
        self.orders += 1
        if status == Status.REJECTED:
            self.rejections += 1
        window = self._window
        while window and window[0] <= created_at - WINDOW:
            window.popleft()
        window.append(created_at)
        if len(window) > self.peak_ops:
            self.peak_ops, self.peak_at = len(window), created_at


def algo_summary_list(
    *,
    organisation: Organisation | None,
    date_from: date,
    date_to: date,
    account: BrokerAccount | None = None,
    algo_id: str = "",
) -> list[AlgoDayRow]:
    """Return a row per IST day, account and algo id with any order or trade in the range, of the
    organisation's accounts (every account when None), newest day first, then by algo id and client code.

    Orders are read once, in (account, algo id, creation) order, without holding more than one second of
    any group; trades are counted per day in the database.
    """
    start, end = ist_bounds(date_from, date_to)
    accounts = BrokerAccount.objects.select_related("organisation")
    if account is not None:
        accounts = accounts.filter(pk=account.pk)
    elif organisation is not None:
        accounts = accounts.filter(organisation=organisation)
    by_id = {a.pk: a for a in accounts}
    rows: dict[tuple[date, int, str], AlgoDayRow] = {}

    def row(day: date, account_id: int, algo: str) -> AlgoDayRow:
        key = (day, account_id, algo)
        if key not in rows:
            rows[key] = AlgoDayRow(day=day, account=by_id[account_id], algo_id=algo)
        return rows[key]

    orders = Order.objects.filter(account_id__in=by_id, created_at__gte=start, created_at__lt=end)
    trades = Trade.objects.filter(account_id__in=by_id, executed_at__gte=start, executed_at__lt=end)
    if algo_id:
        orders, trades = orders.filter(algo_id=algo_id), trades.filter(order__algo_id=algo_id)
    stream = orders.order_by("account_id", "algo_id", "created_at", "id").values_list(
        "account_id", "algo_id", "created_at", "status"
    )
    for account_id, algo, created_at, status in stream.iterator(chunk_size=5000):
        row(timezone.localtime(created_at, IST).date(), account_id, algo).count_order(created_at, status)
    per_day = (
        trades.annotate(day=TruncDate("executed_at", tzinfo=IST), algo=F("order__algo_id"))
        .values("day", "account_id", "algo")
        .annotate(n=Count("id"))
        .order_by()
    )
    for found in per_day:
        row(found["day"], found["account_id"], found["algo"]).trades += found["n"]
    result = list(rows.values())
    result.sort(key=lambda r: (r.algo_id, r.account.client_code, r.account.pk))
    result.sort(key=lambda r: r.day, reverse=True)
    return result


def _kwargs(filters: ReportFilters, organisation) -> dict:
    return {
        "organisation": scope_of(organisation, filters.extra),
        "date_from": filters.date_from,
        "date_to": filters.date_to,
        "account": filters.account,
        "algo_id": filters.algo_id,
    }


def _page(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        return {"rows": algo_summary_list(**_kwargs(filters, organisation)), "threshold": OPS_THRESHOLD}

    return _report_page(request, slug, template=TEMPLATE, fields=fields, results=results)


def _rows(filters: ReportFilters, organisation) -> tuple[int, list[tuple]]:
    rows = [
        (
            row.day.isoformat(),
            row.account.organisation.slug,
            row.account.client_code,
            row.algo_id,
            row.orders,
            row.trades,
            row.rejections,
            row.peak_ops,
            timezone.localtime(row.peak_at, IST).strftime("%Y-%m-%d %H:%M:%S.%f") if row.peak_at else "",
            "yes" if row.over_threshold else "no",
        )
        for row in algo_summary_list(**_kwargs(filters, organisation))
    ]
    return len(rows), rows


def _export_view(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    return _export(
        request, slug, template=TEMPLATE, fields=fields, report="algo_summary", rows=_rows, header=HEADER, title=TITLE
    )


algo_summary, algo_summary_export, platform_algo_summary, platform_algo_summary_export = report_views(
    _page, _export_view, FIELDS, PLATFORM_FIELDS
)
