"""The platform's trade trail and order-to-trade ratio: every organisation's rows, with the organisation
named on each and an organisation filter, through the same queries, pages and export helpers as an
organisation's (compliance/views.py)."""

from __future__ import annotations

from collections.abc import Iterator

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from compliance.access import PLATFORM
from compliance.reports.scope import scope_of
from compliance.selectors import order_to_trade_list, trade_trail_extent, trade_trail_list
from compliance.views import (
    ORDER_TO_TRADE_CHART,
    ORDER_TO_TRADE_HEADER,
    PAGE_SIZE,
    TRADE_TRAIL_HEADER,
    ReportFilters,
    _export,
    _order_to_trade_kwargs,
    _report_page,
    _trade_kwargs,
    _trade_row,
    verified_required,
)

TRADE_TRAIL_FIELDS = ("from", "to", "algo", "source", "org")
ORDER_TO_TRADE_FIELDS = ("from", "to", "algo", "source", "org")
PLATFORM_TRADE_TRAIL_HEADER = ("organisation", *TRADE_TRAIL_HEADER)
PLATFORM_ORDER_TO_TRADE_HEADER = ("organisation", *ORDER_TO_TRADE_HEADER)


def _trade_page_results(request: HttpRequest):
    def results(filters: ReportFilters, organisation) -> dict:
        trades = trade_trail_list(organisation=scope_of(organisation, filters.extra), **_trade_kwargs(filters))
        return {"page": Paginator(trades, PAGE_SIZE).get_page(request.GET.get("page"))}

    return results


def _trade_rows(filters: ReportFilters, organisation) -> tuple[int, Iterator[tuple]]:
    scope = scope_of(organisation, filters.extra)
    count, last_id = trade_trail_extent(trade_trail_list(organisation=scope, **_trade_kwargs(filters)))
    pinned = trade_trail_list(organisation=scope, up_to_id=last_id or 0, **_trade_kwargs(filters))
    rows = ((trade.account.organisation.slug, *_trade_row(trade)) for trade in pinned.iterator(chunk_size=2000))
    return count, rows


def _ratio_rows(filters: ReportFilters, organisation) -> tuple[int, list[tuple]]:
    found = order_to_trade_list(organisation=scope_of(organisation, filters.extra), **_order_to_trade_kwargs(filters))
    rows = [
        (
            r.account.organisation.slug,
            r.day.isoformat(),
            r.account.client_code,
            r.orders,
            r.modifications,
            r.cancellations,
            r.trades,
            r.ratio,
        )
        for r in found
    ]
    return len(rows), rows


@verified_required
@require_GET
def platform_trade_trail(request: HttpRequest) -> HttpResponse:
    return _report_page(
        request,
        PLATFORM,
        template="compliance/trade_trail.html",
        fields=TRADE_TRAIL_FIELDS,
        results=_trade_page_results(request),
    )


@verified_required
@require_GET
def platform_trade_trail_export(request: HttpRequest) -> HttpResponse:
    return _export(
        request,
        PLATFORM,
        template="compliance/trade_trail.html",
        fields=TRADE_TRAIL_FIELDS,
        report="trade_trail",
        rows=_trade_rows,
        header=PLATFORM_TRADE_TRAIL_HEADER,
        title="Trade trail",
    )


@verified_required
@require_GET
def platform_order_to_trade(request: HttpRequest) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        scope = scope_of(organisation, filters.extra)
        return {"rows": order_to_trade_list(organisation=scope, **_order_to_trade_kwargs(filters))}

    return _report_page(
        request, PLATFORM, template="compliance/order_to_trade.html", fields=ORDER_TO_TRADE_FIELDS, results=results
    )


@verified_required
@require_GET
def platform_order_to_trade_export(request: HttpRequest) -> HttpResponse:
    return _export(
        request,
        PLATFORM,
        template="compliance/order_to_trade.html",
        fields=ORDER_TO_TRADE_FIELDS,
        report="order_to_trade",
        rows=_ratio_rows,
        header=PLATFORM_ORDER_TO_TRADE_HEADER,
        chart=ORDER_TO_TRADE_CHART,
        title="Order-to-trade ratio",
    )
