"""The trader's reports for one broker account: P&L with charges, the tradebook and the tax P&L, each a
page filtered by query parameters with CSV and XLSX exports of its rows. The numbers come from
``orders.reports``; refused filters come back in the page with each field's error (422); an account the
user cannot see is 404."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from brokers.selectors import account_list_for_user
from core.tabular import csv_lines, csv_response, xlsx_response
from orders.reports import periods
from orders.reports.charges import CHARGE_PARTS, ChargeTotals
from orders.reports.pnl import PnlReport, pnl_report
from orders.reports.tax import CATEGORY_LABELS, TaxReport, tax_report
from orders.reports.tradebook import PRODUCTS, SEGMENTS, SIDES, tradebook, tradebook_filters
from terminal.views.trading import _account_for_panel, current_account

PAGE_SIZE = 100
EXPORT_FORMATS = ("csv", "xlsx")
PAISA = Decimal("0.01")
EXACT = Decimal("0.0001")
REPORTS = {"pnl": "P&L", "tradebook": "Tradebook", "tax": "Tax P&L"}


def _paise(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(PAISA)


@login_required
@require_GET
def reports_home(request: HttpRequest) -> HttpResponse:
    """The reports of the account the terminal works on (its P&L), or the empty state without one."""
    account = current_account(request)
    if account is None:
        return render(request, "terminal/reports.html", {"account": None, "report": "pnl"})
    return redirect("reports-pnl", account_id=account.pk)


def _base(request: HttpRequest, account, report: str, values: dict[str, str]) -> dict:
    return {
        "account": account,
        "accounts": list(account_list_for_user(user=request.user, access="view").order_by("pk")),
        "report": report,
        "reports": REPORTS,
        "page_url": reverse(f"reports-{report}", args=[account.pk]),
        "values": values,
        "query": urlencode({name: value for name, value in values.items() if value}),
    }


def _render(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    template = "terminal/reports.html#report" if request.htmx else "terminal/reports.html"
    return render(request, template, context, status=status)


def _refused(request: HttpRequest, context: dict, error: periods.ReportInvalid) -> HttpResponse:
    return _render(request, context | {"error": error, "errors": error.extra["fields"]}, status=error.status)


def _values(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
    return {name: request.GET.get(name, "").strip() for name in names}


def _dated(values: dict[str, str]) -> dict[str, str]:
    """The date fields as the form shows them: today (IST) where left empty."""
    today = periods.today_ist().isoformat()
    return values | {name: values[name] or today for name in ("from", "to") if name in values}


# --- P&L ---------------------------------------------------------------------------------------------
PNL_FIELDS = ("from", "to")


def _pnl(request: HttpRequest, account_id: int):
    account = _account_for_panel(request, account_id, "view")
    values = _dated(_values(request, PNL_FIELDS))
    context = _base(request, account, "pnl", values)
    return account, values, context


@login_required
@require_GET
def pnl_page(request: HttpRequest, account_id: int) -> HttpResponse:
    account, values, context = _pnl(request, account_id)
    try:
        period = periods.date_range(values["from"], values["to"])
    except periods.ReportInvalid as error:
        return _refused(request, context, error)
    return _render(request, context | {"pnl": pnl_report(account=account, period=period)})


PNL_HEADER = (
    "exchange",
    "tradingsymbol",
    "product",
    "segment",
    "buy_quantity",
    "buy_value",
    "sell_quantity",
    "sell_value",
    "realised",
    "open_quantity",
    "average_price",
    "ltp",
    "unrealised",
    *CHARGE_PARTS,
    "charges",
    "net",
)


def _charge_cells(charges: ChargeTotals) -> list[Decimal]:
    return [getattr(charges, name) for name in CHARGE_PARTS] + [charges.total]


def pnl_rows(report: PnlReport) -> Iterator[list]:
    """The P&L export's rows: one per symbol and product, then the total."""
    for row in report.symbols:
        yield [
            row.instrument.exchange,
            row.instrument.tradingsymbol,
            row.product,
            row.segment,
            row.buy_quantity,
            _paise(row.buy_value),
            row.sell_quantity,
            _paise(row.sell_value),
            _paise(row.realised),
            row.open_quantity,
            row.average_price.quantize(EXACT) if row.open_quantity else None,
            row.ltp,
            _paise(row.unrealised),
            *_charge_cells(row.charges),
            _paise(row.net),
        ]
    totals = report.totals
    yield [
        "TOTAL",
        "",
        "",
        "",
        sum(row.buy_quantity for row in report.symbols),
        _paise(sum((row.buy_value for row in report.symbols), Decimal(0))),
        sum(row.sell_quantity for row in report.symbols),
        _paise(sum((row.sell_value for row in report.symbols), Decimal(0))),
        _paise(totals.realised),
        None,
        None,
        None,
        _paise(totals.unrealised),
        *_charge_cells(totals.charges),
        _paise(totals.net),
    ]


def _export_format(request: HttpRequest) -> str | None:
    chosen = request.GET.get("format", "csv").strip().lower() or "csv"
    return chosen if chosen in EXPORT_FORMATS else None


def _format_refused() -> periods.ReportInvalid:
    return periods.ReportInvalid(
        "Format must be csv or xlsx.",
        code="format_unknown",
        extra={"fields": {"format": {"code": "format_unknown", "message": "Export as csv or xlsx."}}},
    )


def _send(request: HttpRequest, account, report: str, span: str, header: tuple, rows: Iterable[Iterable]):
    """Send ``rows`` as CSV (streamed) or XLSX, named after the account, the report and ``span``."""
    chosen = _export_format(request)
    name = f"{slugify(account.client_code) or account.pk}-{report}-{span}"
    if chosen == "xlsx":
        return xlsx_response(header, rows, f"{name}.xlsx", REPORTS[report])
    return csv_response(request, csv_lines(header, rows), f"{name}.csv")


@login_required
@require_GET
def pnl_export(request: HttpRequest, account_id: int) -> HttpResponse:
    account, values, context = _pnl(request, account_id)
    try:
        period = periods.date_range(values["from"], values["to"])
        if _export_format(request) is None:
            raise _format_refused()
    except periods.ReportInvalid as error:
        return _refused(request, context, error)
    report = pnl_report(account=account, period=period)
    span = f"{period.date_from}-to-{period.date_to}"
    return _send(request, account, "pnl", span, PNL_HEADER, pnl_rows(report))


# --- tradebook -------------------------------------------------------------------------------------------
TRADEBOOK_FIELDS = ("from", "to", "symbol", "segment", "side", "product")
TRADEBOOK_HEADER = (
    "executed_at_ist",
    "exchange",
    "tradingsymbol",
    "side",
    "quantity",
    "price",
    "value",
    "product",
    "order_id",
    "broker_trade_id",
)


def _tradebook(request: HttpRequest, account_id: int):
    account = _account_for_panel(request, account_id, "view")
    values = _dated(_values(request, TRADEBOOK_FIELDS))
    context = _base(request, account, "tradebook", values) | {
        "segments": SEGMENTS,
        "sides": SIDES,
        "products": PRODUCTS,
    }
    return account, values, context


def _filters(values: dict[str, str]):
    return tradebook_filters(
        values["from"], values["to"], values["symbol"], values["segment"], values["side"], values["product"]
    )


@login_required
@require_GET
def tradebook_page(request: HttpRequest, account_id: int) -> HttpResponse:
    account, values, context = _tradebook(request, account_id)
    try:
        filters = _filters(values)
    except periods.ReportInvalid as error:
        return _refused(request, context, error)
    trades = tradebook(account=account, filters=filters)
    return _render(request, context | {"page": Paginator(trades, PAGE_SIZE).get_page(request.GET.get("page"))})


def tradebook_rows(trades) -> Iterator[list]:
    for trade in trades.iterator(chunk_size=2000):
        yield [
            timezone.localtime(trade.executed_at, periods.IST).strftime("%Y-%m-%d %H:%M:%S"),
            trade.instrument.exchange,
            trade.instrument.tradingsymbol,
            trade.side,
            trade.quantity,
            trade.price.quantize(EXACT),
            trade.value.quantize(EXACT),
            trade.product,
            trade.order_id,
            trade.broker_trade_id,
        ]


@login_required
@require_GET
def tradebook_export(request: HttpRequest, account_id: int) -> HttpResponse:
    account, values, context = _tradebook(request, account_id)
    try:
        filters = _filters(values)
        if _export_format(request) is None:
            raise _format_refused()
    except periods.ReportInvalid as error:
        return _refused(request, context, error)
    trades = tradebook(account=account, filters=filters)
    span = f"{filters.period.date_from}-to-{filters.period.date_to}"
    return _send(request, account, "tradebook", span, TRADEBOOK_HEADER, tradebook_rows(trades))


# --- tax P&L ---------------------------------------------------------------------------------------------
TAX_HEADER = (
    "category",
    "exchange",
    "tradingsymbol",
    "bought_on",
    "sold_on",
    "quantity",
    "buy_value",
    "sell_value",
    "pnl",
)


def _tax(request: HttpRequest, account_id: int):
    account = _account_for_panel(request, account_id, "view")
    values = _values(request, ("fy",))
    values["fy"] = values["fy"] or periods.financial_year_of(periods.today_ist()).label
    current = periods.financial_year_of(periods.today_ist()).start_year
    years = [periods.FinancialYear(year) for year in range(current, current - 6, -1)]
    return account, values, _base(request, account, "tax", values) | {"years": years}


@login_required
@require_GET
def tax_page(request: HttpRequest, account_id: int) -> HttpResponse:
    account, values, context = _tax(request, account_id)
    try:
        year = periods.financial_year(values["fy"])
    except periods.ReportInvalid as error:
        return _refused(request, context, error)
    report = tax_report(account=account, year=year)
    categories = [(name, label, report.categories[name]) for name, label in CATEGORY_LABELS.items()]
    return _render(request, context | {"tax": report, "categories": categories})


def tax_rows(report: TaxReport) -> Iterator[list]:
    for line in report.lines:
        yield [
            line.category,
            line.instrument.exchange,
            line.instrument.tradingsymbol,
            line.bought_on.isoformat() if line.bought_on else "",
            line.sold_on.isoformat(),
            line.quantity,
            _paise(line.buy_value),
            _paise(line.sell_value),
            _paise(line.pnl),
        ]


@login_required
@require_GET
def tax_export(request: HttpRequest, account_id: int) -> HttpResponse:
    account, values, context = _tax(request, account_id)
    try:
        year = periods.financial_year(values["fy"])
        if _export_format(request) is None:
            raise _format_refused()
    except periods.ReportInvalid as error:
        return _refused(request, context, error)
    return _send(
        request, account, "tax", f"fy-{year.label}", TAX_HEADER, tax_rows(tax_report(account=account, year=year))
    )
