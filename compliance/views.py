"""The organisation's compliance reports (Owner, Admin and Compliance), and their platform-wide
versions for platform staff: each a page filtered by query parameters and an audited export of the
same rows (CSV, XLSX or PDF; compliance/exports/). The trade trail and the order-to-trade ratio live
here; the other reports in ``compliance/reports/``, through the same page and export helpers. Also the
pages of the export jobs that make an organisation's large exports."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
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
from compliance.errors import ExportNotReady, ExportRefused, ReportFiltersInvalid
from compliance.exports.chart import ChartSpec, default_chart
from compliance.exports.csvfile import csv_lines
from compliance.exports.digest import file_sha256
from compliance.exports.formats import EXPORT_FORMATS, write_export
from compliance.exports.jobs import ExportRequest, export_job_create, export_job_open
from compliance.exports.references import reference
from compliance.exports.responses import csv_stream_response, file_response
from compliance.exports.selectors import export_job_get, export_job_list
from compliance.exports.statement import ExportStatement
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
from core.tabular import csv_cell  # noqa: F401  (re-exported: the reports' cell guard)
from orders.models import Source

verified_required = otp_required(if_configured=False)
PAGE_SIZE = 100
MAX_DAYS = 366  # the longest range, counting both ends
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


ReportView = Callable[[HttpRequest, str, tuple[str, ...]], HttpResponse]


def report_views(page: ReportView, export: ReportView, fields: tuple[str, ...], platform_fields: tuple[str, ...]):
    """A report's four views from its page and export functions: the organisation's page and export
    (``slug`` from the URL), and the platform-wide ones (``PLATFORM``, every organisation)."""

    @verified_required
    @require_GET
    def organisation_page(request: HttpRequest, slug: str) -> HttpResponse:
        return page(request, slug, fields)

    @verified_required
    @require_GET
    def organisation_export(request: HttpRequest, slug: str) -> HttpResponse:
        return export(request, slug, fields)

    @verified_required
    @require_GET
    def platform_page(request: HttpRequest) -> HttpResponse:
        return page(request, PLATFORM, platform_fields)

    @verified_required
    @require_GET
    def platform_export(request: HttpRequest) -> HttpResponse:
        return export(request, PLATFORM, platform_fields)

    return organisation_page, organisation_export, platform_page, platform_export


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


# --- Exports (compliance/exports/) -----------------------------------------------------------------
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
ORDER_TO_TRADE_CHART = ChartSpec(title="Orders and trades per day", category="date_ist", measures=("orders", "trades"))
EXACT = Decimal("0.0001")  # prices and values in the CSV: four places, as stored (quantity is whole)
EVERY_ORGANISATION = "All organisations"  # what a platform report's export states as its organisation


def _filename(organisation, report: str, filters: ReportFilters, extension: str = "csv") -> str:
    dates = f"{filters.date_from.isoformat()}-to-{filters.date_to.isoformat()}"
    scope = organisation.slug if organisation is not None else "platform"
    return f"{scope}-{report.replace('_', '-')}-{dates}.{extension}"


def _refuse(request: HttpRequest, template: str, context: dict, error: ApplicationError, field: str) -> HttpResponse:
    """The report page with ``error`` beside ``field`` (422); nothing is exported or audited."""
    context.update(error=error, errors={field: {"code": error.code, "message": error.message}})
    return render(request, template, context, status=error.status)


def _job_filters(values: dict[str, str], organisation) -> ReportFilters:
    """The filters of an export job, parsed again in the worker from the values the request gave (as
    ``_filters`` parses them, a report's own filters included). Raises ReportFiltersInvalid when they
    no longer hold (an account deleted since)."""
    return _filters(values, list(report_account_list(organisation=organisation)))


def _export(
    request: HttpRequest,
    slug: str,
    *,
    template: str,
    fields: tuple[str, ...],
    report: str,
    rows: Callable[[ReportFilters, object], tuple[int, Iterable[Iterable]]],
    header: tuple[str, ...],
    chart: ChartSpec | None = None,
    title: str | None = None,
) -> HttpResponse:
    """Export a report as CSV (the default), XLSX or PDF (``?format=``), audited.

    Refused filters, an unknown format or a PDF over ``COMPLIANCE_EXPORT_PDF_MAX_ROWS`` rows get the
    page with their error (422) and nothing is exported or audited. Over
    ``COMPLIANCE_EXPORT_INLINE_MAX_ROWS`` rows or ``COMPLIANCE_EXPORT_INLINE_MAX_DAYS`` days the export
    becomes a job for a worker and the answer is a redirect (303) to the job's page; smaller ones are
    sent at once (compliance/exports/responses.py). ``rows(filters, organisation)`` returns the row
    count and the rows; it must be a module-level function of the compliance app for a worker to run
    it. ``chart`` is what the PDF charts (default: rows per day).

    A platform report (``organisation`` None) is always made in the request: an export job belongs to
    one organisation, and its pages and files are that organisation's. Its statement names "All
    organisations" (or the ``org`` filter, which its filters state)."""
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
        error = ReportFiltersInvalid(f"Format must be one of {', '.join(EXPORT_FORMATS)}.", code="format_unknown")
        return _refuse(request, template, context, error, "format")
    count, found = rows(filters, organisation)
    if export_format == "pdf" and count > settings.COMPLIANCE_EXPORT_PDF_MAX_ROWS:
        error = ExportRefused(
            f"A PDF holds at most {settings.COMPLIANCE_EXPORT_PDF_MAX_ROWS:,} rows and this range has {count:,}: "
            "export CSV or XLSX, or narrow the range.",
            code="pdf_too_many_rows",
        )
        return _refuse(request, template, context, error, "format")
    title = title or report.replace("_", " ").capitalize()
    chart = chart if chart is not None else default_chart(header)
    filename = _filename(organisation, report, filters, export_format)
    days = (filters.date_to - filters.date_from).days + 1
    rows_ref = reference(rows)
    large = count > settings.COMPLIANCE_EXPORT_INLINE_MAX_ROWS or days > settings.COMPLIANCE_EXPORT_INLINE_MAX_DAYS
    if large and rows_ref is not None and organisation is not None:
        job_request = ExportRequest(
            report=report,
            title=title,
            export_format=export_format,
            filters=filters.as_payload(),
            query=context["values"],
            header=list(header),
            chart=chart,
            rows_ref=rows_ref,
            filters_ref=reference(_job_filters) or "",
            rows_total=count,
            download_name=filename,
        )
        job = export_job_create(
            actor=request.user, organisation=organisation, request=job_request, ip=client_ip(request)
        )
        response = redirect("compliance:export-job", slug=organisation.slug, job_id=job.pk)
        response.status_code = 303  # see the job's page; reloading it does not export again
        return response
    payload = {"report": report, "format": export_format, "filters": filters.as_payload(), "rows": count}
    statement = ExportStatement(
        title=title,
        organisation=organisation.name if organisation is not None else EVERY_ORGANISATION,
        report=report,
        filters=filters.as_payload(),
        generated_at=timezone.now(),
    )
    if export_format == "csv":
        # The event is written before the first row is sent, so an export the client abandons is still
        # on record; the bytes' SHA-256 is known only after the last, and recorded then.
        started = audit_record(
            actor=request.user,
            action="compliance.report_exported",
            target=organisation,
            payload=payload,
            ip=client_ip(request),
        )
        user, ip = request.user, client_ip(request)

        def sent(sha256: str, size: int) -> None:
            audit_record(
                actor=user,
                action="compliance.report_export_sent",
                target=organisation,
                payload={"export": started.pk, "report": report, "format": "csv", "bytes": size, "sha256": sha256},
                ip=ip,
            )

        return csv_stream_response(request, csv_lines(header, found, statement), filename, on_sent=sent)
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (FileResponse closes it, and so deletes it, when sent)
    write_export(spool, export_format, header=header, rows=found, statement=statement, chart=chart)
    sha256, size = file_sha256(spool)
    audit_record(
        actor=request.user,
        action="compliance.report_exported",
        target=organisation,
        payload={**payload, "bytes": size, "sha256": sha256},
        ip=client_ip(request),
    )
    return file_response(spool, export_format, filename, sha256)


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
        title="Trade trail",
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
        chart=ORDER_TO_TRADE_CHART,
        title="Order-to-trade ratio",
    )


# --- Export jobs ------------------------------------------------------------------------------------
JOB_POLL_SECONDS = 2


def _job(request: HttpRequest, slug: str, job_id: UUID):
    """The organisation's export job with the caller's access checked again (as for the reports), or
    the error page: 404 for an outsider, or a job of another organisation or none, 403 for a member
    who may not see reports."""
    organisation, refused = _organisation(request, slug)
    if refused is not None:
        return organisation, None, refused
    job = export_job_get(organisation=organisation, job_id=job_id)
    if job is None:
        error = ApplicationError("There is no such export.", code="export_not_found")
        return organisation, None, render(request, "accounts/error.html", {"error": error}, status=404)
    return organisation, job, None


@verified_required
@require_GET
def export_jobs(request: HttpRequest, slug: str) -> HttpResponse:
    """The organisation's recent export jobs with their state."""
    organisation, refused = _organisation(request, slug)
    if refused is not None:
        return refused
    jobs = list(export_job_list(organisation=organisation))
    context = {
        "organisation": organisation,
        "jobs": jobs,
        "polling": any(not job.finished for job in jobs),
        "poll_seconds": JOB_POLL_SECONDS * 2,
    }
    return render(request, "compliance/exports.html#jobs" if request.htmx else "compliance/exports.html", context)


@verified_required
@require_GET
def export_job(request: HttpRequest, slug: str, job_id: UUID) -> HttpResponse:
    """An export job: its progress (polled by HTMX while it runs), then its download link and digest."""
    organisation, job, refused = _job(request, slug, job_id)
    if refused is not None:
        return refused
    context = {
        "organisation": organisation,
        "job": job,
        "poll_seconds": JOB_POLL_SECONDS,
        "retention_days": settings.COMPLIANCE_EXPORT_RETENTION_DAYS,
    }
    return render(request, "compliance/export_job.html#job" if request.htmx else "compliance/export_job.html", context)


@verified_required
@require_GET
def export_download(request: HttpRequest, slug: str, job_id: UUID) -> HttpResponse:
    """Send a finished job's file, audited: streamed from the storage with its ``Repr-Digest``, or from
    S3 as a redirect to a short-lived presigned URL. A job not finished (409), failed (409) or past
    its retention (410) gets the error page."""
    organisation, job, refused = _job(request, slug, job_id)
    if refused is not None:
        return refused
    try:
        opened = export_job_open(job=job)
    except ExportNotReady as error:
        return render(request, "accounts/error.html", {"error": error}, status=error.status)
    audit_record(
        actor=request.user,
        action="compliance.report_export_downloaded",
        target=organisation,
        payload={"job": str(job.pk), "report": job.report, "format": job.format, "sha256": job.sha256},
        ip=client_ip(request),
    )
    if opened.url:
        return HttpResponseRedirect(opened.url)
    response = file_response(opened.file, job.format, job.download_name, job.sha256)
    response["Content-Length"] = str(job.size)
    return response
