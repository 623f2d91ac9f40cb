"""The organisation's compliance reports (Owner and Admin): the trade trail and the order-to-trade
ratio, each a page filtered by query parameters and an audited export of the same rows (CSV, XLSX or
PDF; compliance/exports/), and the pages of the export jobs that make large ones."""

from __future__ import annotations

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
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_otp.decorators import otp_required

from accounts.selectors import organisation_get_for_user
from audit.services import audit_record
from brokers.models import BrokerAccount
from compliance.errors import ExportNotReady, ExportRefused, ReportFiltersInvalid
from compliance.exports.cells import csv_cell  # noqa: F401  (re-exported: the reports' cell guard)
from compliance.exports.chart import ChartSpec, default_chart
from compliance.exports.csvfile import csv_lines
from compliance.exports.digest import file_sha256
from compliance.exports.formats import EXPORT_FORMATS, write_export
from compliance.exports.jobs import ExportRequest, export_job_create, export_job_open
from compliance.exports.references import reference
from compliance.exports.responses import csv_stream_response, file_response
from compliance.exports.selectors import export_job_get, export_job_list
from compliance.exports.statement import ExportStatement
from compliance.selectors import (
    IST,
    order_to_trade_list,
    report_account_list,
    trade_trail_extent,
    trade_trail_list,
)
from core.client_ip import client_ip
from core.errors import ApplicationError
from orders.models import Source

verified_required = otp_required(if_configured=False)
PAGE_SIZE = 100
MAX_DAYS = 366  # the longest range, counting both ends
TRADE_TRAIL_FIELDS = ("account", "from", "to", "algo", "source")
ORDER_TO_TRADE_FIELDS = ("account", "from", "to")


@dataclass(frozen=True, slots=True)
class ReportFilters:
    date_from: date
    date_to: date
    account: BrokerAccount | None = None
    algo_id: str = ""
    source: str = ""

    def as_payload(self) -> dict:
        """The filters as the audit event records them."""
        return {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "account": self.account.client_code if self.account else "",
            "algo_id": self.algo_id,
            "source": self.source,
        }


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
    if values["account"]:
        account = next((a for a in accounts if str(a.pk) == values["account"]), None)
        if account is None:
            errors["account"] = {
                "code": "account_not_found",
                "message": "Account must be one of the organisation's broker accounts.",
            }
    algo_id, source = values.get("algo", ""), values.get("source", "")
    if len(algo_id) > 40:
        errors["algo"] = {"code": "algo_id_too_long", "message": "Algo id has at most 40 characters."}
    if source and source not in Source.values:
        errors["source"] = {
            "code": "source_unknown",
            "message": f"Source must be one of {', '.join(Source.values)}.",
        }
    if errors:
        first = next(iter(errors.values()))
        raise ReportFiltersInvalid(first["message"], code=first["code"], extra={"fields": errors})
    return ReportFilters(dates["from"], dates["to"], account, algo_id, source)


def _organisation(request: HttpRequest, slug: str):
    """The organisation the caller manages, or the error page (404 outsider or none, 403 not a manager)."""
    try:
        organisation, _ = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return None, render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    return organisation, None


def _context(request: HttpRequest, organisation, fields: tuple[str, ...]) -> dict:
    """What every report page shows: the organisation, the filter form's choices and values as typed,
    and those values as a query string (for the export link and the pages)."""
    values = _values(request, fields)
    return {
        "organisation": organisation,
        "accounts": list(report_account_list(organisation=organisation)),
        "sources": Source.choices,
        "values": values,
        "query": urlencode({field: value for field, value in values.items() if value}),
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
        kwargs = {"date_from": filters.date_from, "date_to": filters.date_to, "account": filters.account}
        return {"rows": order_to_trade_list(organisation=organisation, **kwargs)}

    return _report_page(
        request, slug, template="compliance/order_to_trade.html", fields=ORDER_TO_TRADE_FIELDS, results=results
    )


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


def _filename(organisation, report: str, filters: ReportFilters, extension: str = "csv") -> str:
    dates = f"{filters.date_from.isoformat()}-to-{filters.date_to.isoformat()}"
    return f"{organisation.slug}-{report.replace('_', '-')}-{dates}.{extension}"


def _refuse(request: HttpRequest, template: str, context: dict, error: ApplicationError, field: str) -> HttpResponse:
    """The report page with ``error`` beside ``field`` (422); nothing is exported or audited."""
    context.update(error=error, errors={field: {"code": error.code, "message": error.message}})
    return render(request, template, context, status=error.status)


def _job_filters(values: dict, organisation) -> ReportFilters:
    """The filters of an export job, parsed again in the worker from the values the request gave.
    Raises ReportFiltersInvalid when they no longer hold (an account deleted since)."""
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
    it. ``chart`` is what the PDF charts (default: rows per day)."""
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
    if large and rows_ref is not None:
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

        return csv_stream_response(request, csv_lines(header, found), filename, on_sent=sent)
    statement = ExportStatement(
        title=title,
        organisation=organisation.name,
        report=report,
        filters=filters.as_payload(),
        generated_at=timezone.now(),
    )
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

    def rows() -> Iterator[tuple]:
        for trade in pinned.iterator(chunk_size=2000):
            order = trade.order
            yield (
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

    return count, rows()


def _order_to_trade_rows(filters: ReportFilters, organisation) -> tuple[int, list[tuple]]:
    found = order_to_trade_list(
        organisation=organisation, date_from=filters.date_from, date_to=filters.date_to, account=filters.account
    )
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
