"""The organisation's compliance reports (Owner, Admin and Compliance), and their platform-wide
versions for platform staff: each a page filtered by query parameters and a CSV or XLSX export of
the same rows (audited). The trade trail and the order-to-trade ratio live here; the other reports in
``compliance/reports/``, through the same page and export helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_otp.decorators import otp_required

from accounts.errors import OrganisationNotFound
from accounts.models import Organisation
from accounts.selectors import organisation_get_for_reports
from audit.services import audit_record
from brokers.models import BrokerAccount
from compliance.access import PLATFORM, platform_reports_allowed
from compliance.errors import ReportFiltersInvalid
from compliance.filters import check_extra_filters
from compliance.selectors import (
    IST,
    order_to_trade_list,
    report_account_list,
    trade_trail_extent,
    trade_trail_list,
)
from core.client_ip import client_ip
from core.errors import ApplicationError
from core.tabular import csv_cell, xlsx_cell  # noqa: F401  (the export cells, shared with the trader's reports)
from core.tabular import csv_lines as _csv_lines
from core.tabular import csv_response as _csv_response
from core.tabular import xlsx_response as _xlsx_response
from orders.models import Source

verified_required = otp_required(if_configured=False)
PAGE_SIZE = 100
MAX_DAYS = 366  # the longest range, counting both ends
EXPORT_FORMATS = ("csv", "xlsx")
TRADE_TRAIL_FIELDS = ("account", "from", "to", "algo", "source")
ORDER_TO_TRADE_FIELDS = ("account", "from", "to", "algo", "source")


@dataclass(frozen=True, slots=True)
class ReportFilters:
    date_from: date
    date_to: date
    account: BrokerAccount | None = None
    algo_id: str = ""
    source: str = ""
    # A report's own filters (compliance/filters.py), by field: the audit log's actor, a platform
    # report's organisation (``org``, an Organisation), ...
    extra: dict = dataclasses.field(default_factory=dict)

    def as_payload(self) -> dict:
        """The filters as the audit event records them."""
        payload = {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "account": self.account.client_code if self.account else "",
            "algo_id": self.algo_id,
            "source": self.source,
        }
        for name, value in self.extra.items():
            payload[name] = value.slug if isinstance(value, Organisation) else value
        return payload


def _values(request: HttpRequest, fields: tuple[str, ...]) -> dict[str, str]:
    """The filters as typed (trimmed); the dates default to today in IST."""
    today = timezone.localdate(timezone=IST).isoformat()
    values = {field: request.GET.get(field, "").strip() for field in fields}
    for field in ("from", "to"):
        values[field] = values[field] or today
    return values


def _filters(values: dict[str, str], accounts: list[BrokerAccount]) -> ReportFilters:
    """Return the filters ``values`` name. Raises ReportFiltersInvalid naming every refused field."""
    errors: dict[str, dict[str, str]] = {}
    dates: dict[str, date] = {}
    for field, label in (("from", "From"), ("to", "To")):
        try:
            dates[field] = date.fromisoformat(values[field])
        except ValueError:
            errors[field] = {
                "code": "date_invalid",
                "message": f"{label} must be a date such as 2025-01-31, not {values[field][:40]!r}.",
            }
    if not errors:
        days = (dates["to"] - dates["from"]).days + 1
        if days < 1:
            errors["from"] = {"code": "date_range_reversed", "message": "From must not be after To."}
        elif days > MAX_DAYS:
            errors["to"] = {
                "code": "date_range_too_long",
                "message": f"The range covers {days} days; a report covers at most {MAX_DAYS}.",
            }
    account = None
    if values.get("account"):
        account = next((a for a in accounts if str(a.pk) == values["account"]), None)
        if account is None:
            errors["account"] = {
                "code": "account_not_found",
                "message": "Account must be one of the organisation's broker accounts.",
            }
    algo_id, source = values.get("algo", ""), values.get("source", "")
    if len(algo_id) > 40:
        errors["algo"] = {"code": "algo_id_too_long", "message": "Algo id has at most 40 characters."}
    elif any(ord(c) < 32 or ord(c) == 127 for c in algo_id):
        errors["algo"] = {"code": "algo_id_invalid", "message": "Algo id must not contain control characters."}
    if source and source not in Source.values:
        errors["source"] = {
            "code": "source_unknown",
            "message": f"Source must be one of {', '.join(Source.values)}.",
        }
    extra = check_extra_filters(values, errors)
    if errors:
        first = next(iter(errors.values()))
        raise ReportFiltersInvalid(first["message"], code=first["code"], extra={"fields": errors})
    return ReportFilters(dates["from"], dates["to"], account, algo_id, source, extra)


def _organisation(request: HttpRequest, slug: str):
    """The organisation whose reports the caller reads (Owner, Admin, Compliance), or the error page
    (404 outsider or none, 403 another role). ``slug`` PLATFORM names every organisation: the platform's
    reports, for platform staff who may view reports, answered with None for the organisation."""
    if slug == PLATFORM:
        if platform_reports_allowed(request.user):
            return None, None
        error = OrganisationNotFound("The platform's reports were not found.")
        return None, render(request, "accounts/error.html", {"error": error}, status=error.status)
    try:
        organisation, _ = organisation_get_for_reports(user=request.user, slug=slug)
    except ApplicationError as exc:
        return None, render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    return organisation, None


def _report_urls(request: HttpRequest) -> dict[str, str]:
    """The page and export URLs of the report being served, in the organisation's or the platform's
    version alike: its URL name without ``-export``, with the same arguments."""
    match = request.resolver_match
    page = (match.url_name or "").removesuffix("-export") if match else ""
    if not page:
        return {}
    return {
        "report_url": reverse(f"compliance:{page}", kwargs=match.kwargs),
        "export_url": reverse(f"compliance:{page}-export", kwargs=match.kwargs),
    }


def _context(request: HttpRequest, organisation, fields: tuple[str, ...]) -> dict:
    """What every report page shows: the organisation (None on the platform's pages, which list the
    organisations instead), the filter form's choices and values as typed, and those values as a query
    string (for the export link and the pages)."""
    values = _values(request, fields)
    return {
        "organisation": organisation,
        "platform": organisation is None,
        "organisations": list(Organisation.objects.order_by("name")) if organisation is None else [],
        "accounts": list(report_account_list(organisation=organisation)) if organisation is not None else [],
        "sources": Source.choices,
        "values": values,
        "query": urlencode({field: value for field, value in values.items() if value}),
        **_report_urls(request),
    }


def _report_page(
    request: HttpRequest,
    slug: str,
    *,
    template: str,
    fields: tuple[str, ...],
    results: Callable[[ReportFilters, object], dict],
) -> HttpResponse:
    """Render a report page: its filter form, and its results or the refused filters (422). HTMX gets
    the ``report`` partial (form and results), which its filter form swaps."""
    organisation, refused = _organisation(request, slug)
    if refused is not None:
        return refused
    context = _context(request, organisation, fields)
    status = 200
    try:
        filters = _filters(context["values"], context["accounts"])
    except ReportFiltersInvalid as error:
        context.update(error=error, errors=error.extra["fields"])
        status = error.status
    else:
        context.update(filters=filters, **results(filters, organisation))
    return render(request, f"{template}#report" if request.htmx else template, context, status=status)


@verified_required
@require_GET
def trade_trail(request: HttpRequest, slug: str) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        trades = trade_trail_list(organisation=organisation, **_trade_kwargs(filters))
        return {"page": Paginator(trades, PAGE_SIZE).get_page(request.GET.get("page"))}

    return _report_page(
        request, slug, template="compliance/trade_trail.html", fields=TRADE_TRAIL_FIELDS, results=results
    )


@verified_required
@require_GET
def order_to_trade(request: HttpRequest, slug: str) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        return {"rows": order_to_trade_list(organisation=organisation, **_order_to_trade_kwargs(filters))}

    return _report_page(
        request, slug, template="compliance/order_to_trade.html", fields=ORDER_TO_TRADE_FIELDS, results=results
    )


def _order_to_trade_kwargs(filters: ReportFilters) -> dict:
    return {
        "date_from": filters.date_from,
        "date_to": filters.date_to,
        "account": filters.account,
        "algo_id": filters.algo_id,
        "source": filters.source,
    }


def _trade_kwargs(filters: ReportFilters) -> dict:
    return {
        "date_from": filters.date_from,
        "date_to": filters.date_to,
        "account": filters.account,
        "algo_id": filters.algo_id,
        "source": filters.source,
    }


# --- CSV exports ------------------------------------------------------------------------------------
TRADE_TRAIL_HEADER = (
    "executed_at_ist",
    "client_code",
    "exchange",
    "tradingsymbol",
    "side",
    "quantity",
    "price",
    "value",
    "product",
    "broker_trade_id",
    "client_order_id",
    "algo_id",
    "source",
    "strategy",
    "placed_by",
)
ORDER_TO_TRADE_HEADER = ("date_ist", "client_code", "orders", "modifications", "cancellations", "trades", "ratio")
EXACT = Decimal("0.0001")  # prices and values in the CSV: four places, as stored (quantity is whole)


def _filename(organisation, report: str, filters: ReportFilters, extension: str = "csv") -> str:
    dates = f"{filters.date_from.isoformat()}-to-{filters.date_to.isoformat()}"
    scope = organisation.slug if organisation is not None else "platform"
    return f"{scope}-{report.replace('_', '-')}-{dates}.{extension}"


def _export(
    request: HttpRequest,
    slug: str,
    *,
    template: str,
    fields: tuple[str, ...],
    report: str,
    rows: Callable[[ReportFilters, object], tuple[int, Iterable[Iterable]]],
    header: tuple[str, ...],
) -> HttpResponse:
    """Audit and stream a report's CSV, or send it as an XLSX workbook with ``?format=xlsx``;
    refused filters (or an unknown format) get the page with their errors (422) and nothing is
    exported or audited. The event is written before the first row is sent, so an export the client
    abandons is still on record."""
    organisation, refused = _organisation(request, slug)
    if refused is not None:
        return refused
    context = _context(request, organisation, fields)
    try:
        filters = _filters(context["values"], context["accounts"])
    except ReportFiltersInvalid as error:
        context.update(error=error, errors=error.extra["fields"])
        return render(request, template, context, status=error.status)
    export_format = request.GET.get("format", "csv").strip().lower() or "csv"
    if export_format not in EXPORT_FORMATS:
        error = ReportFiltersInvalid(
            f"Format must be one of {', '.join(EXPORT_FORMATS)}.",
            code="format_unknown",
            extra={"fields": {"format": {"code": "format_unknown", "message": "Export as csv or xlsx."}}},
        )
        context.update(error=error, errors=error.extra["fields"])
        return render(request, template, context, status=error.status)
    count, lines = rows(filters, organisation)
    audit_record(
        actor=request.user,
        action="compliance.report_exported",
        target=organisation,
        payload={"report": report, "format": export_format, "filters": filters.as_payload(), "rows": count},
        ip=client_ip(request),
    )
    if export_format == "xlsx":
        filename = _filename(organisation, report, filters, "xlsx")
        return _xlsx_response(header, lines, filename, report.replace("_", " "))
    return _csv_response(request, _csv_lines(header, lines), _filename(organisation, report, filters))


def _trade_trail_rows(filters: ReportFilters, organisation) -> tuple[int, Iterator[tuple]]:
    trades = trade_trail_list(organisation=organisation, **_trade_kwargs(filters))
    count, last_id = trade_trail_extent(trades)
    # Only the trades counted (and audited): one executed meanwhile is left for the next export.
    pinned = trade_trail_list(organisation=organisation, up_to_id=last_id or 0, **_trade_kwargs(filters))
    return count, (_trade_row(trade) for trade in pinned.iterator(chunk_size=2000))


def _trade_row(trade) -> tuple:
    """One trade as the trade trail's export writes it (TRADE_TRAIL_HEADER)."""
    order = trade.order
    return (
        timezone.localtime(trade.executed_at, IST).strftime("%Y-%m-%d %H:%M:%S"),
        trade.account.client_code,
        trade.instrument.exchange,
        trade.instrument.tradingsymbol,
        trade.side,
        trade.quantity,
        trade.price.quantize(EXACT),
        trade.value.quantize(EXACT),
        trade.product,
        trade.broker_trade_id,
        order.client_order_id,
        order.algo_id,
        order.source,
        order.strategy,
        order.placed_by.get_username() if order.placed_by else "",
    )


def _order_to_trade_rows(filters: ReportFilters, organisation) -> tuple[int, list[tuple]]:
    found = order_to_trade_list(organisation=organisation, **_order_to_trade_kwargs(filters))
    rows = [
        (r.day.isoformat(), r.account.client_code, r.orders, r.modifications, r.cancellations, r.trades, r.ratio)
        for r in found
    ]
    return len(rows), rows


@verified_required
@require_GET
def trade_trail_export(request: HttpRequest, slug: str) -> HttpResponse:
    return _export(
        request,
        slug,
        template="compliance/trade_trail.html",
        fields=TRADE_TRAIL_FIELDS,
        report="trade_trail",
        rows=_trade_trail_rows,
        header=TRADE_TRAIL_HEADER,
    )


@verified_required
@require_GET
def order_to_trade_export(request: HttpRequest, slug: str) -> HttpResponse:
    return _export(
        request,
        slug,
        template="compliance/order_to_trade.html",
        fields=ORDER_TO_TRADE_FIELDS,
        report="order_to_trade",
        rows=_order_to_trade_rows,
        header=ORDER_TO_TRADE_HEADER,
    )
